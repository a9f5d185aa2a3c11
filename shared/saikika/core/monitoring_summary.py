"""The monitoring page's numbers, pure: the objects read from the buckets (live quality, label drift, loop health,
the decision log, run records, counts of feedback and rejected inputs per day) in, `summary.json` out. The page's
figures draw these numbers and nothing else (`saikika.model.monitoring_page`); the reading is
`saikika.cloud.monitoring_source`.

Label mix: a day's `label_shares` are per item (an item with two labels counts for both), so the page normalises
each day's occurrences, labels and `(none)` together, to shares that sum to 1: the same mix the drift divergence
compares. The TOP_LABELS labels with the largest mix over the days are drawn; the rest are summed into `(other)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from saikika.core.drift import KEPT_KEYS, too_few_items

TOP_LABELS = 8
NONE = "(none)"
OTHER = "(other)"


@dataclass(frozen=True)
class MonitoringObjects:
    """What the page is drawn from, as read: JSON values with the contract's keys (MONITORING_CONTRACT), oldest
    first, and the days counted from listings."""

    since: str  # the first day of the window (YYYY-MM-DD)
    live_quality: tuple[Mapping[str, Any], ...] = ()
    drift_days: tuple[Mapping[str, Any], ...] = ()  # source "event", one per day
    batch_drift: tuple[Mapping[str, Any], ...] = ()  # source "batch", one per run
    health: Mapping[str, Any] | None = None
    decisions: tuple[Mapping[str, Any], ...] = ()  # decision-log entries, each with its `decided_at`
    offline_micro_f1: Mapping[str, float | None] = field(default_factory=dict)  # version → metadata metrics
    runs: tuple[Mapping[str, Any], ...] = ()  # retrain run records
    rejected: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # day → source → rejected messages
    feedback_rows: Mapping[str, int] = field(default_factory=dict)  # day → feedback rows received
    notes: tuple[str, ...] = ()  # what could not be read, and why


def summarise(found: MonitoringObjects, now: datetime) -> dict[str, Any]:
    """`summary.json`: every number a figure or table of the page shows."""
    return {
        "generated_at": now.isoformat(),
        "since": found.since,
        "headline": headline(found, now),
        "health": dict(found.health) if found.health is not None else None,
        "live_quality": live_quality(found),
        "label_mix": label_mix(found.drift_days),
        "batch_drift": [_batch_run(run) for run in found.batch_drift],
        "daily": daily(found),
        "runs": runs(found.runs),
        "decisions": decisions(found.decisions),
        "notes": list(found.notes),
    }


def headline(found: MonitoringObjects, now: datetime) -> dict[str, Any]:
    """The champion, its newest live F1, today's drift, the run outcomes and the health status in one place."""
    today = f"{now:%Y-%m-%d}"
    newest = found.live_quality[-1] if found.live_quality else None
    drift_today = next((d for d in found.drift_days if d.get("day") == today), None)
    return {
        "status": (found.health or {}).get("status"),
        "champion": _champion(found),
        "live_micro_f1": None if newest is None else newest.get("micro_f1"),
        "live_champion_version": None if newest is None else newest.get("champion_version"),
        "drift_today": None if drift_today is None else {k: drift_today.get(k) for k in KEPT_KEYS},
        "runs": dict(Counter(str(run.get("status")) for run in found.runs)),
    }


def _champion(found: MonitoringObjects) -> str | None:
    """The health object's champion, else the newest promotion in the window, else the newest live quality's."""
    champion = ((found.health or {}).get("champion") or {}).get("version")
    promoted = [d.get("version") for d in found.decisions if d.get("outcome") == "promoted"]
    scored = [q.get("champion_version") for q in found.live_quality]
    return champion or (promoted[-1] if promoted else None) or (scored[-1] if scored else None)


_QUALITY_KEYS = (
    "champion_version",
    "run_started",
    "computed_at",
    "rows",
    "micro_f1",
    "macro_f1",
    "exact_match",
    "degraded",
    "why",
)


def live_quality(found: MonitoringObjects) -> dict[str, Any]:
    """Each run's live scores, and per champion version its offline micro F1 (its metadata.json's; the live
    quality object's copy where the metadata could not be read) beside the runs that scored it."""
    scored = [{key: q.get(key) for key in _QUALITY_KEYS} for q in found.live_quality]
    versions: dict[str, dict[str, Any]] = {}
    for quality in found.live_quality:
        version = quality.get("champion_version")
        offline = found.offline_micro_f1.get(version)
        entry = versions.setdefault(
            version,
            {
                "version": version,
                "offline_micro_f1": offline if offline is not None else quality.get("offline_micro_f1"),
            },
        )
        entry.setdefault("first_run", quality.get("run_started"))
        entry["last_run"] = quality.get("run_started")
        entry["runs"] = entry.get("runs", 0) + 1
    return {"runs": scored, "versions": list(versions.values())}


def normalised_mix(drift: Mapping[str, Any]) -> dict[str, float]:
    """A day's label occurrences and `(none)` as shares summing to 1 (all 0 for a day with no items)."""
    occurrences = {label: float(share) for label, share in (drift.get("label_shares") or {}).items() if label != NONE}
    occurrences[NONE] = float(drift.get("no_label_share") or 0.0)
    total = sum(occurrences.values())
    return {label: (share / total if total > 0 else 0.0) for label, share in occurrences.items()}


def label_mix(drift_days: tuple[Mapping[str, Any], ...]) -> dict[str, Any]:
    """Per day (oldest first): the mix of the TOP_LABELS labels, `(other)` and `(none)`, and the drift figures."""
    mixes = [normalised_mix(day) for day in drift_days]
    weight: Counter[str] = Counter()
    for mix in mixes:
        weight.update({label: share for label, share in mix.items() if label != NONE})
    top = sorted(weight, key=lambda label: (-weight[label], label))[:TOP_LABELS]
    shares = {label: [mix.get(label, 0.0) for mix in mixes] for label in top}
    shares[OTHER] = [sum(s for label, s in mix.items() if label not in top and label != NONE) for mix in mixes]
    shares[NONE] = [mix[NONE] for mix in mixes]
    return {
        "days": [day.get("day") for day in drift_days],
        "labels": [*top, OTHER, NONE],
        "shares": shares,
        **{key: [day.get(key) for day in drift_days] for key in ("items", "divergence", "bound", "above_bound")},
    }


def _batch_run(drift: Mapping[str, Any]) -> dict[str, Any]:
    return {key: drift.get(key) for key in ("run_id", "champion_version", *KEPT_KEYS)}


def daily(found: MonitoringObjects) -> list[dict[str, Any]]:
    """Per day of the window with anything in it: items predicted (event and online path, from the day's drift
    object; batch runs, from theirs), feedback rows received, and rejected input messages."""
    event = {d.get("day"): int(d.get("items") or 0) for d in found.drift_days}
    batch: Counter[str] = Counter()
    for run in found.batch_drift:
        batch[run.get("day")] += int(run.get("items") or 0)
    days = sorted(
        day
        for day in {*event, *batch, *found.feedback_rows, *found.rejected}
        if isinstance(day, str) and day >= found.since
    )
    return [
        {
            "day": day,
            "items_predicted": event.get(day, 0),
            "items_predicted_batch": batch.get(day, 0),
            "feedback_rows": found.feedback_rows.get(day, 0),
            "rejected_inputs": sum(found.rejected.get(day, {}).values()),
            "rejected_by_source": dict(found.rejected.get(day, {})),
        }
        for day in days
    ]


def runs(records: tuple[Mapping[str, Any], ...]) -> dict[str, Any]:
    keys = ("started_at", "status", "reason", "version", "seconds", "trigger")
    return {
        "outcomes": dict(Counter(str(record.get("status")) for record in records)),
        "runs": [{key: record.get(key) for key in keys} for record in records],
    }


def decisions(entries: tuple[Mapping[str, Any], ...]) -> dict[str, Any]:
    keys = ("decided_at", "version", "action", "outcome", "reason", "champion_version")
    return {
        "outcomes": dict(Counter(str(entry.get("outcome")) for entry in entries)),
        "decisions": [{key: entry.get(key) for key in keys} for entry in entries],
    }


def headline_lines(summary: Mapping[str, Any]) -> list[str]:
    """The headline as a few lines of text, for a terminal."""
    head = summary["headline"]
    live = head["live_micro_f1"]
    drift = head["drift_today"]
    runs_text = ", ".join(f"{n} {status}" for status, n in sorted(head["runs"].items())) or "none"
    return [
        f"health: {head['status'] or 'no health object yet'}",
        f"champion: {head['champion'] or 'none'}",
        "live micro F1: "
        + (
            "no live quality yet"
            if live is None
            else f"{_f3(live)} (of {head['live_champion_version']}, while it was the champion)"
        ),
        "drift today: "
        + (
            "no drift object for today"
            if drift is None
            else f"{_f3(drift['divergence'])} (bound {drift['bound']}, {drift['items']} items)"
            + (" ABOVE BOUND" if drift["above_bound"] else "")
            + (" too few items to judge" if too_few_items(drift) else "")
        ),
        f"retrain runs since {summary['since']}: {runs_text}",
    ]


def _f3(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"
