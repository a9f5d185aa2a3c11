"""`saikika models list`: each version's story told from its decisions (promoted by push or by hand, rejected and
why, rolled back), in a table that fits the terminal with every reason shown whole."""

from __future__ import annotations

import pytest
from rich.console import Console

from saikika.core.decisions import (
    PROMOTED_BY_HAND,
    PUSHED_AND_PROMOTED,
    Action,
    Decision,
    Outcome,
    story,
)
from saikika.tooling.cli.models import versions_table

V1, V2, V3 = "20261201T000000Z-aaaaaaaa", "20261202T000000Z-bbbbbbbb", "20261203T000000Z-cccccccc"
WHY = (
    "candidate micro F1 0.9012 is below the champion's 0.9311 by more than the margin 0.005 on 412 evaluation "
    "rows; macro F1 0.8800 against 0.9100; the label kids lost the most"
)


def judged(version: str, outcome: Outcome, reason: str | None = None) -> Decision:
    return Decision(version, Action.JUDGE, outcome, reason=reason)


def by_hand(version: str, reason: str | None, previous: str | None = None) -> Decision:
    return Decision(version, Action.PROMOTE_BY_HAND, Outcome.PROMOTED, reason=reason, previous_champion=previous)


def rollback(restored: str, rolled_back: str) -> Decision:
    return Decision(restored, Action.ROLLBACK, Outcome.PROMOTED, previous_champion=rolled_back)


@pytest.mark.parametrize(
    "version, verdict, log, expected",
    [
        # `models push --promote`: the promote function then finds it champion already; the push is what counts.
        (
            V1,
            None,
            [by_hand(V1, PUSHED_AND_PROMOTED), judged(V1, Outcome.ALREADY_CHAMPION, "the champion already")],
            ("promoted by push", ""),
        ),
        # Rejected, then made champion with `models promote`: the ★ beside it is explained.
        (
            V2,
            judged(V2, Outcome.REJECTED, WHY),
            [judged(V2, Outcome.REJECTED, WHY), by_hand(V2, PROMOTED_BY_HAND, V1)],
            ("rejected → promoted by hand", WHY),
        ),
        # A verdict in decision.json the log does not hold still counts (first).
        (
            V2,
            judged(V2, Outcome.REJECTED, WHY),
            [by_hand(V2, PROMOTED_BY_HAND, V1)],
            ("rejected → promoted by hand", WHY),
        ),
        (V3, None, [judged(V3, Outcome.PROMOTED, "better"), rollback(V1, V3)], ("promoted → rolled back", "better")),
        (
            V1,
            None,
            [by_hand(V1, "demo: first model"), rollback(V1, V3)],
            ("promoted by hand → restored by rollback", "demo: first model"),
        ),
        (V3, None, [judged(V1, Outcome.PROMOTED)], ("not judged yet", "")),
        (V1, judged(V1, Outcome.ALREADY_CHAMPION), [], ("already champion", "")),
    ],
)
def test_a_versions_story(version, verdict, log, expected):
    assert story(version, verdict, log) == expected


def test_the_table_fits_100_columns_and_shows_a_long_reason_whole():
    rows = [
        ("★", V2, "1500", "0.9012", "0.8800", "0.9400", "rejected → promoted by hand", WHY),
        ("", V1, "900", "0.9311", "0.9100", "0.9500", "promoted by push", ""),
        ("", V3, "900", "0.9311", "0.9100", "0.9500", "not judged yet", "a [bracketed] reason, not markup"),
    ]
    console = Console(width=100, record=True)
    console.print(versions_table("gs://saikika-models/models/", rows))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert V1 in text and V2 in text and V3 in text  # a version is never wrapped
    assert " ".join(WHY.split()) in _column_text(text, "decision (why)")
    assert "rejected → promoted by hand" in _column_text(text, "decision (why)")
    assert "★ " + V2 in text and "[bracketed]" in text


def test_a_narrow_terminal_wraps_rather_than_cuts():
    console = Console(width=80, record=True)
    console.print(versions_table("t", [("", V1, "900", "0.9", "0.9", "0.9", "rejected", WHY)]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert " ".join(WHY.split()) in _column_text(text, "decision (why)")


def _column_text(text: str, header: str) -> str:
    """A column's words read top to bottom: from where its header starts to where the next header starts."""
    lines = text.splitlines()
    at = next(n for n, line in enumerate(lines) if f" {header}" in line or line.startswith(header))
    start = lines[at].index(header)
    rest = lines[at][start + len(header) :]
    end = start + len(header) + (len(rest) - len(rest.lstrip())) if rest.strip() else None
    cells = (line[start:end].strip() for line in lines[at + 1 :] if set(line.strip()) != {"─"})
    return " ".join(" ".join(cell.split()) for cell in cells if cell)
