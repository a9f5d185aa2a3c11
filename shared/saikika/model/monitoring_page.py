"""The monitoring page (`saikika monitor`): `index.html`, its figures (PNG, matplotlib) and `summary.json`, all drawn
from the numbers `saikika.core.monitoring_summary.summarise` computed, in the model report's style
(`saikika.model.report`). Never on the serving path: matplotlib is imported here.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib

from saikika.core.monitoring_summary import NONE, OTHER

matplotlib.use("Agg")  # no display; before pyplot is imported
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

# File → (heading, what it shows), in the page's order.
FIGURES = {
    "live_quality.png": (
        "Live quality",
        "live micro F1 per run, coloured by champion version; dashed: each version's offline micro F1",
    ),
    "label_mix.png": (
        "Label mix",
        "the label mix per day (shares of label occurrences) and the drift divergence against its bound",
    ),
    "daily.png": ("Work per day", "items predicted, feedback rows received and inputs rejected per day"),
    "timeline.png": ("Runs and decisions", "retrain run outcomes and promotion decisions over time"),
}
STATUS_COLOURS = {"ok": "#2e7d32", "degraded": "#ef6c00", "stalled": "#c62828", "no-champion": "#6d4c41"}


def build(summary: Mapping[str, Any]) -> dict[str, bytes]:
    """File name → bytes: the page, every figure it links, and the summary it was drawn from."""
    return {
        "index.html": page(summary).encode("utf-8"),
        "summary.json": (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "live_quality.png": live_quality_png(summary["live_quality"]),
        "label_mix.png": label_mix_png(summary["label_mix"]),
        "daily.png": daily_png(summary["daily"]),
        "timeline.png": timeline_png(summary["runs"]["runs"], summary["decisions"]["decisions"]),
    }


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def _dates(axis) -> None:
    locator = mdates.AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


MAX_DAY_TICKS = 12


def _day_ticks(axis, days: list[datetime]) -> None:
    """One tick per day (every few days past MAX_DAY_TICKS), named by its date: the bars are days, not hours."""
    step = -(-len(days) // MAX_DAY_TICKS)
    axis.set_xticks(days[::step])
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))


def _empty(text: str, size: tuple[float, float] = (9, 2)) -> bytes:
    figure, axis = plt.subplots(figsize=size)
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center", color="grey")
    return _done(figure)


def _done(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def live_quality_png(quality: Mapping[str, Any]) -> bytes:
    runs = [run for run in quality["runs"] if run.get("micro_f1") is not None and _when(run.get("run_started"))]
    if not runs:
        return _empty("no live quality yet: written by retrain runs that score feedback the champion never saw")
    figure, axis = plt.subplots(figsize=(9, 4))
    times = [_when(run["run_started"]) for run in runs]
    # Each version's offline line reaches a little past its runs, so a version scored once still gets one.
    pad = max((max(times) - min(times)) * 0.02, timedelta(minutes=30))
    colours = plt.get_cmap("tab10")
    for index, entry in enumerate(quality["versions"]):
        colour = colours(index % 10)
        mine = [(t, run) for t, run in zip(times, runs) if run["champion_version"] == entry["version"]]
        if not mine:
            continue
        xs, ys = [t for t, _ in mine], [run["micro_f1"] for _, run in mine]
        axis.plot(xs, ys, marker="o", color=colour, label=f"{entry['version']} live")
        degraded = [(t, run["micro_f1"]) for t, run in mine if run.get("degraded")]
        if degraded:
            axis.scatter(*zip(*degraded), marker="x", s=80, color="tab:red", zorder=3)
        if entry.get("offline_micro_f1") is not None:
            axis.hlines(
                entry["offline_micro_f1"],
                min(xs) - pad,
                max(xs) + pad,
                colors=[colour],
                linestyles="dashed",
                label=f"{entry['version']} offline",
            )
    axis.set(ylabel="micro F1", title="live micro F1 per run (x: degraded); dashed: the version's offline micro F1")
    axis.set_ylim(0, 1.02)
    _dates(axis)
    axis.legend(fontsize="x-small", loc="lower left")
    return _done(figure)


# tab10 without its grey, which is kept for (other) and (none).
LABEL_COLOURS = [plt.get_cmap("tab10")(i) for i in range(10) if i != 7]


def label_mix_png(mix: Mapping[str, Any]) -> bytes:
    if not mix["days"]:
        return _empty("no label drift yet: the tick writes one object per day of the event path")
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    days = [_day(day) for day in mix["days"]]
    base = [0.0] * len(days)
    for index, label in enumerate(mix["labels"]):
        colour = {OTHER: "#bdbdbd", NONE: "#424242"}.get(label, LABEL_COLOURS[index % len(LABEL_COLOURS)])
        shares = mix["shares"][label]
        top.bar(days, shares, bottom=base, width=0.8, color=colour, label=label)
        base = [b + s for b, s in zip(base, shares)]
    top.set(ylabel="share of label occurrences", title="label mix per day (event and online path)")
    top.set_ylim(0, 1)
    handles, names = top.get_legend_handles_labels()
    top.legend(handles[::-1], names[::-1], fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    divergence = [d if d is not None else float("nan") for d in mix["divergence"]]
    bottom.plot(days, divergence, marker="o", color="tab:blue", label="divergence")
    bounds = [b if b is not None else float("nan") for b in mix["bound"]]
    bottom.plot(days, bounds, linestyle="--", color="tab:red", label="bound")
    above = [(day, d) for day, d, flag in zip(days, divergence, mix["above_bound"]) if flag]
    if above:
        bottom.scatter(*zip(*above), color="tab:red", zorder=3)
    bottom.set(ylabel="JS divergence")
    bottom.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    _day_ticks(bottom, days)
    return _done(figure)


def daily_png(days: list[Mapping[str, Any]]) -> bytes:
    if not days:
        return _empty("nothing predicted, received or rejected in the window")
    figure, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True, constrained_layout=True)
    x = [_day(day["day"]) for day in days]
    event = [day["items_predicted"] for day in days]
    axes[0].bar(x, event, width=0.8, color="tab:blue", label="event and online")
    axes[0].bar(
        x, [day["items_predicted_batch"] for day in days], width=0.8, bottom=event, color="tab:cyan", label="batch"
    )
    axes[0].set(ylabel="items predicted")
    axes[0].legend(fontsize="x-small")
    axes[1].bar(x, [day["feedback_rows"] for day in days], width=0.8, color="tab:green")
    axes[1].set(ylabel="feedback rows")
    axes[2].bar(x, [day["rejected_inputs"] for day in days], width=0.8, color="tab:red")
    axes[2].set(ylabel="rejected messages")
    for axis in axes:  # counts: from 0, whole numbers, and a visible axis on a day of zeros
        axis.yaxis.get_major_locator().set_params(integer=True)
        axis.set_ylim(0, max(1.0, axis.get_ylim()[1]))
    _day_ticks(axes[2], x)
    return _done(figure)


RUN_ROWS = ("trained", "up-to-date", "skipped", "deferred", "handed-off", "ignored", "failed")
RUN_COLOURS = {"trained": "tab:green", "up-to-date": "tab:blue", "failed": "tab:red", "skipped": "tab:orange"}
DECISION_MARKERS = {"promoted": ("^", "tab:green"), "rejected": ("v", "tab:red")}


def timeline_png(runs: list[Mapping[str, Any]], decisions: list[Mapping[str, Any]]) -> bytes:
    runs = [run for run in runs if _when(run.get("started_at"))]
    decisions = [entry for entry in decisions if _when(entry.get("decided_at"))]
    if not runs and not decisions:
        return _empty("no retrain run or decision in the window")
    seen = {str(r["status"]) for r in runs}
    rows = [*(s for s in RUN_ROWS if s in seen), *sorted(seen - set(RUN_ROWS))]
    outcomes = sorted({str(entry["outcome"]) for entry in decisions})
    figure, axis = plt.subplots(figsize=(9, 0.5 * (len(rows) + len(outcomes)) + 1.5))
    for status in rows:
        mine = [_when(run["started_at"]) for run in runs if run["status"] == status]
        if mine:
            axis.scatter(mine, [status] * len(mine), color=RUN_COLOURS.get(status, "tab:grey"), s=36)
    for outcome in outcomes:
        marker, colour = DECISION_MARKERS.get(outcome, ("o", "tab:grey"))
        mine = [_when(entry["decided_at"]) for entry in decisions if entry["outcome"] == outcome]
        axis.scatter(mine, [f"decision: {outcome}"] * len(mine), marker=marker, color=colour, s=64)
    axis.set(title="retrain runs by outcome, and promotion decisions")
    axis.margins(y=0.5 / max(1, len(rows) + len(outcomes)))
    axis.grid(axis="x", color="#eeeeee")
    _dates(axis)
    return _done(figure)


# ---- the page ---------------------------------------------------------------------------------------------------
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    ".status{color:#fff;padding:2px 8px;border-radius:3px}.note{color:#666}img{max-width:100%}"
)


def page(summary: Mapping[str, Any]) -> str:
    figures = "".join(
        f'<h2>{heading}</h2><p class="note">{html.escape(what)}</p><img src="{name}" alt="{html.escape(what)}">\n'
        for name, (heading, what) in FIGURES.items()
    )
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in summary["notes"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>saikika monitoring</title>
<style>{STYLE}</style>
</head><body>
<h1>saikika: the loop</h1>
<p class="note">Drawn {html.escape(summary["generated_at"])} from the objects since {html.escape(summary["since"])};
the numbers are in <a href="summary.json">summary.json</a>.</p>{notes}
<h2>Health</h2>
{health_table(summary["health"])}
<h2>Headline</h2>
{_rows(_headline_rows(summary["headline"]))}
{figures}
<h2>Decisions</h2>
{decisions_table(summary["decisions"]["decisions"])}
</body></html>
"""


def _rows(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(key)}</th><td>{value}</td></tr>" for key, value in rows)
    return f"<table>{body}</table>"


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def health_table(health: Mapping[str, Any] | None) -> str:
    if health is None:
        return '<p class="note">No health object yet (monitoring/health.json: the tick writes it).</p>'
    status = str(health.get("status"))
    badge = f'<span class="status" style="background:{STATUS_COLOURS.get(status, "#616161")}">{_text(status)}</span>'
    problems = "".join(f"<li>{_text(p)}</li>" for p in health.get("problems") or []) or "none"
    champion, last = health.get("champion") or {}, health.get("last_run") or {}
    live, drift = health.get("last_live_quality") or {}, health.get("drift") or {}
    pending = health.get("pending") or {}
    return _rows(
        [
            ("status", badge),
            ("problems", f"<ul>{problems}</ul>" if health.get("problems") else problems),
            (
                "champion",
                f"{_text(champion.get('version'))} since {_text(champion.get('since'))} ({_age(champion.get('age_s'))})",
            ),
            ("champion offline micro F1", _text(champion.get("offline_micro_f1"))),
            (
                "last run",
                f"{_text(last.get('status'))} at {_text(last.get('started_at'))}: {_text(last.get('reason'))}",
            ),
            ("last successful run", _text(health.get("last_successful_run_at"))),
            ("pending work", f"{_text(pending.get('count'))} (the oldest {_age(pending.get('oldest_age_s'))} old)"),
            ("failed runs in a row", _text(health.get("consecutive_failed_runs"))),
            ("rejected candidates in a row", _text(health.get("consecutive_rejected_candidates"))),
            ("last live micro F1", f"{_text(live.get('micro_f1'))} on {_text(live.get('rows'))} rows"),
            (
                "drift",
                f"{_text(drift.get('divergence'))} (bound {_text(drift.get('bound'))}, {_text(drift.get('day'))})",
            ),
            ("rejected inputs today", _text(health.get("rejected_inputs_today"))),
            ("checked at", _text(health.get("checked_at"))),
        ]
    )


def _age(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _headline_rows(head: Mapping[str, Any]) -> list[tuple[str, str]]:
    drift = head["drift_today"] or {}
    runs = ", ".join(f"{n} {_text(status)}" for status, n in sorted(head["runs"].items())) or "none"
    return [
        ("champion", _text(head["champion"])),
        (
            "newest live micro F1",
            "—"
            if head["live_micro_f1"] is None
            else f"{_text(head['live_micro_f1'])} ({_text(head['live_champion_version'])})",
        ),
        ("drift today", f"{_text(drift.get('divergence'))} (bound {_text(drift.get('bound'))})" if drift else "—"),
        ("retrain runs", runs),
    ]


def decisions_table(decisions: list[Mapping[str, Any]]) -> str:
    if not decisions:
        return '<p class="note">No decision in the window.</p>'
    keys = ("decided_at", "version", "action", "outcome", "reason")
    head = "".join(f"<th>{key}</th>" for key in keys)
    body = "".join("<tr>" + "".join(f"<td>{_text(d.get(key))}</td>" for key in keys) + "</tr>" for d in decisions)
    return f"<table><tr>{head}</tr>{body}</table>"
