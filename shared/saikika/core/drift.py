"""Label drift: what the models predict on a day (or in a batch run) against what the champion predicted on its own
tuning split. Pure: numpy and the standard library.

Counts come from the predictions objects' custom metadata (`saikika-label-counts`, written with each object), so a
day's drift is one listing of its folder and no prediction object is ever read. The mix compared is per label
occurrence: an item with two labels counts for both, an item with none counts once for the slot `(none)`. The
divergence is the Jensen–Shannon divergence, base 2 (0: the same mix, 1: nothing in common).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np

from saikika.core.settings import MonitoringSettings

# The custom metadata key every predictions object carries its label counts under.
METADATA_KEY = "saikika-label-counts"
# Cloud Storage allows 8 KiB of custom metadata per object (keys and values together); the counts take at most this
# much, leaving room for the other keys a batch part carries (`read`, `predicted`, `rejected`).
METADATA_MAX_BYTES = 7 * 1024
# The slot of items with no label, and of labels summed beyond the metadata cap.
NONE = "(none)"
OTHER = "(other)"
MOVED_SHOWN = 5
# The bound a batch run uses when its launcher passes none: SAIKIKA_DRIFT_BOUND's default (one number, one place).
DEFAULT_BOUND: float = MonitoringSettings.__dataclass_fields__["drift_bound"].default
DEFAULT_MIN_ITEMS: int = MonitoringSettings.__dataclass_fields__["drift_min_items"].default
# What a reader keeps of a drift object (loop health's `drift`, the monitoring summary's today and batch runs): the
# figure, its bound, and whether it was judged.
KEPT_KEYS = ("day", "divergence", "bound", "no_label_share", "above_bound", "items", "min_items")
# Where a baseline came from: the champion's own predictions on its tuning split, or (models trained before that
# was recorded) the share of tuning-split rows labeled with each label.
BASELINE_PREDICTED = "tuning predictions"
BASELINE_SUPPORT = "training support"


@dataclass
class LabelCounts:
    """How many items, how many had no label, and how often each label was predicted. `other` sums the labels
    left out of a capped metadata value (their names did not fit)."""

    items: int = 0
    none: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    other: int = 0

    def add(self, labels: Iterable[str]) -> None:
        """One item and the labels predicted for it."""
        self.items += 1
        seen = False
        for label in labels:
            self.labels[label] = self.labels.get(label, 0) + 1
            seen = True
        if not seen:
            self.none += 1

    def merge(self, more: LabelCounts) -> None:
        self.items += more.items
        self.none += more.none
        self.other += more.other
        for label, count in more.labels.items():
            self.labels[label] = self.labels.get(label, 0) + count

    @classmethod
    def of(cls, label_lists: Iterable[Iterable[str]]) -> LabelCounts:
        counts = cls()
        for labels in label_lists:
            counts.add(labels)
        return counts

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"items": self.items, "none": self.none, "labels": dict(self.labels)}
        return {**out, "other": self.other} if self.other else out

    def to_metadata(self, max_bytes: int = METADATA_MAX_BYTES) -> str:
        """Compact JSON of at most `max_bytes` UTF-8 bytes: the most frequent labels by name, the rest summed into
        `other` (a catalogue of thousands of labels still fits)."""
        ranked = sorted(self.labels.items(), key=lambda pair: (-pair[1], pair[0]))
        kept = len(ranked)
        while True:
            value = LabelCounts(
                self.items, self.none, dict(ranked[:kept]), self.other + sum(c for _, c in ranked[kept:])
            )
            text = json.dumps(value.to_json(), ensure_ascii=False, separators=(",", ":"))
            size = len(text.encode("utf-8"))
            if size <= max_bytes or kept == 0:
                return text
            # Drop at least the overflow's worth of the longest-ranked tail at once: a few passes, not one per label.
            kept = max(0, min(kept - 1, int(kept * max_bytes / size)))

    def object_metadata(self) -> dict[str, str]:
        """The custom metadata a predictions object carries its counts in (under METADATA_KEY)."""
        return {METADATA_KEY: self.to_metadata()}

    @classmethod
    def of_object(cls, metadata: Mapping[str, str] | None) -> LabelCounts | None:
        """The counts an object's custom metadata carries; None when it carries none that are readable (written
        before counts were kept, or by hand)."""
        try:
            return cls.from_metadata((metadata or {})[METADATA_KEY])
        except (KeyError, ValueError):
            return None

    @classmethod
    def from_metadata(cls, text: str) -> LabelCounts:
        """Counts from a metadata value; ValueError if it is not one (an object written by hand, a bad writer)."""
        try:
            data = json.loads(text)
            labels = {str(k): _count(v) for k, v in dict(data.get("labels") or {}).items()}
            return cls(_count(data["items"]), _count(data.get("none", 0)), labels, _count(data.get("other", 0)))
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not label counts: {text[:80]!r}") from exc


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a count is a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class LabelDrift:
    """One drift computation: a day of the event path (`source` "event") or one batch run ("batch", `run_id`)."""

    day: str
    source: str
    run_id: str | None
    champion_version: str | None
    items: int
    objects: int
    no_label_share: float
    label_shares: dict[str, float]
    baseline_shares: dict[str, float]
    divergence: float
    bound: float
    above_bound: bool
    moved: list[dict[str, Any]]
    computed_at: str
    baseline: str = BASELINE_PREDICTED
    # Predictions objects without readable counts (written before counts were kept): not in `items`.
    uncounted_objects: int = 0
    # Fewer items than this are never judged above the bound (objects written before it was kept: 1).
    min_items: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelDrift:
        known = {spec.name for spec in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def log_fields(self) -> dict[str, Any]:
        """The `label drift` log line's fields (the alert and the log-based metric read these names)."""
        top = self.moved[0] if self.moved else {}
        return {
            "day": self.day,
            "source": self.source,
            "run_id": self.run_id,
            "divergence": self.divergence,
            "bound": self.bound,
            "above_bound": self.above_bound,
            "items": self.items,
            "min_items": self.min_items,
            "no_label_share": self.no_label_share,
            "moved_label": top.get("label"),
            "moved_change": top.get("change"),
            "champion_version": self.champion_version,
        }


def judged(items: int, min_items: int) -> bool:
    """Whether a drift over `items` items can be judged above its bound: at least one, and at least `min_items`."""
    return items >= max(1, min_items)


def too_few_items(drift: Mapping[str, Any]) -> bool:
    """Whether a drift's JSON (as stored, or as health and the summary keep it) had too few items to be judged."""
    return not judged(int(drift.get("items") or 0), int(drift.get("min_items") or 1))


def shares(counts: LabelCounts) -> dict[str, float]:
    """Each label's share of items (an item with two labels counts for both), `(none)` and `(other)` included."""
    if counts.items == 0:
        return {}
    out = {label: count / counts.items for label, count in counts.labels.items()}
    out[NONE] = counts.none / counts.items
    if counts.other:
        out[OTHER] = counts.other / counts.items
    return out


def predicted_shares(predicted: np.ndarray, labels: list[str]) -> dict[str, float]:
    """The baseline training writes: from a (rows, labels) 0/1 matrix of predicted labels, each label's share of
    rows and the share of rows with none (`(none)`)."""
    predicted = np.asarray(predicted, dtype=bool)
    rows = predicted.shape[0]
    if rows == 0:
        return {}
    out = {label: round(float(share), 6) for label, share in zip(labels, predicted.mean(axis=0))}
    out[NONE] = round(float((~predicted.any(axis=1)).mean()), 6)
    return out


def baseline_of(metadata: Mapping[str, Any]) -> tuple[dict[str, float], str]:
    """A version's baseline label shares and where they came from: `label_shares` (written by training), else the
    tuning split's support per label over its rows (models trained before `label_shares` existed)."""
    if isinstance(metadata.get("label_shares"), dict):
        return {str(k): float(v) for k, v in metadata["label_shares"].items()}, BASELINE_PREDICTED
    per_label = (metadata.get("metrics") or {}).get("per_label") or {}
    support = {label: float(values.get("support", 0)) for label, values in per_label.items()}
    rows = float(metadata.get("tuning_rows") or 0) or sum(support.values())
    if not rows:
        return {}, BASELINE_SUPPORT
    return {label: count / rows for label, count in support.items()}, BASELINE_SUPPORT


def batch_run_drift(
    counts: LabelCounts,
    metadata: Mapping[str, Any],
    run_id: str,
    bound: float,
    parts: int,
    now: datetime,
    min_items: int = DEFAULT_MIN_ITEMS,
) -> LabelDrift:
    """A finished batch run's drift against the version that predicted it (its `metadata.json`): what the batch
    function and the Beam pipeline both record."""
    shares, kind = baseline_of(metadata)
    return label_drift(
        counts,
        shares,
        bound,
        day=f"{now:%Y-%m-%d}",
        computed_at=now.isoformat(),
        source="batch",
        run_id=run_id,
        champion_version=str(metadata["version"]),
        objects=parts,
        baseline=kind,
        min_items=min_items,
    )


def _mix(slot_shares: Mapping[str, float], slots: list[str]) -> np.ndarray:
    mix = np.array([max(0.0, slot_shares.get(slot, 0.0)) for slot in slots], dtype=float)
    total = mix.sum()
    return mix / total if total > 0 else mix


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence, base 2, of two distributions over the same slots (0..1; 0 if either is empty)."""
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        held = a > 0
        return float(np.sum(a[held] * np.log2(a[held] / m[held])))

    return min(1.0, max(0.0, (kl(p) + kl(q)) / 2))


def _baseline_slots(baseline: Mapping[str, float], counts: LabelCounts) -> dict[str, float]:
    """The baseline over the slots a day's counts can have: labels the counts left out by name fall in `(other)`."""
    if not counts.other:
        return dict(baseline)
    named = set(counts.labels) | {NONE}
    kept = {label: share for label, share in baseline.items() if label in named}
    kept[OTHER] = sum(share for label, share in baseline.items() if label not in named)
    return kept


def label_drift(
    counts: LabelCounts,
    baseline_shares: Mapping[str, float],
    bound: float,
    *,
    day: str,
    computed_at: str,
    source: str = "event",
    run_id: str | None = None,
    champion_version: str | None = None,
    objects: int = 0,
    baseline: str = BASELINE_PREDICTED,
    uncounted_objects: int = 0,
    min_items: int = DEFAULT_MIN_ITEMS,
) -> LabelDrift:
    """The drift of `counts` against `baseline_shares` (per-item shares by label, `(none)` included); above the
    bound only with at least `min_items` items (six items skewed to one label gave 0.42 against a bound of 0.1)."""
    observed = shares(counts)
    expected = _baseline_slots(baseline_shares, counts)
    slots = sorted(set(observed) | set(expected) | {NONE})
    divergence = js_divergence(_mix(observed, slots), _mix(expected, slots)) if counts.items else 0.0
    changes = [
        {
            "label": slot,
            "share": round(observed.get(slot, 0.0), 6),
            "baseline": round(expected.get(slot, 0.0), 6),
            "change": round(observed.get(slot, 0.0) - expected.get(slot, 0.0), 6),
        }
        for slot in slots
    ]
    moved = sorted(changes, key=lambda c: (-abs(c["change"]), c["label"]))[:MOVED_SHOWN] if counts.items else []
    return LabelDrift(
        day=day,
        source=source,
        run_id=run_id,
        champion_version=champion_version,
        items=counts.items,
        objects=objects,
        no_label_share=round(observed.get(NONE, 0.0), 6),
        label_shares={slot: round(share, 6) for slot, share in sorted(observed.items())},
        baseline_shares={slot: round(share, 6) for slot, share in sorted(baseline_shares.items())},
        divergence=round(divergence, 6),
        bound=bound,
        above_bound=judged(counts.items, min_items) and divergence > bound,
        moved=moved,
        computed_at=computed_at,
        baseline=baseline,
        uncounted_objects=uncounted_objects,
        min_items=min_items,
    )
