"""The markdown each benchmark writes beside its JSON: the figures the docs cite live there, generated, never typed.

Every benchmark script renders its markdown from its own JSON alone, so `--markdown-only` rewrites the committed
markdown from the committed JSON, byte for byte, without measuring anything again.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# What each ratio is meant to reach, for every benchmark (ratios are what to compare: absolute times drift on a
# shared machine).
TARGETS = {
    "ceiling_vs_sklearn": "≥ 8 (stretch 15)",
    "single_vs_sklearn": "≥ 10",
    "train_vs_sklearn": "≥ 3",
    "throughput_vs_mlserver": "≥ 3",
    "batch_vs_ceiling": "≥ 0.5",
    "detect_cost_ratio": "≤ 1.5",
    "rss_ratio_1m_vs_100k": "≤ 1.5",
    "peak_rss_mb_largest": "< 2048 (2 GiB)",
    "drift_requests_ratio": "≤ drift_work_ratio (the day's work, never the days before)",
    "live_quality_requests_ratio": "≤ live_quality_work_ratio (the feedback since the champion, never the base data)",
}


def fmt(value) -> str:
    """A figure as the tables show it: four significant digits; a summary as median (min–max); None as a dash."""
    if isinstance(value, dict) and "median" in value:
        return f"{value['median']:.4g} ({value['min']:.4g}–{value['max']:.4g})"
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def add_markdown_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite the markdown beside --out from the JSON already there, measuring nothing",
    )


def write_markdown(json_path: Path, render: Callable[[dict], list[str]]) -> Path:
    """Renders `json_path`'s results into the .md beside it; the JSON is read back so a fresh run and a
    regeneration from the committed file go through the very same bytes."""
    out = json_path.with_suffix(".md")
    out.write_text("\n".join(render(json.loads(json_path.read_text()))) + "\n", encoding="utf-8")
    return out
