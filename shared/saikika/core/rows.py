"""Labeled JSONL rows (training data, feedback, evaluation rows) parsed with the item contract; bad rows
are counted with where they came from and why, never trained on.

Every training row carries the time of the event that produced it: feedback, its message's publish time
(written by the feedback function as `event_time`); base data, its own `event_time` field (RFC 3339) if it has
one, else the time its object was written. Per item id the newest event wins; at equal times feedback wins over
base data, and then the row read later (`precedence`, the one rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from saikika.core import jsonl
from saikika.core.events import parse_rfc3339
from saikika.core.items import Item, ItemError, decode_line, parse_item

EVENT_TIME_FIELD = "event_time"
BASE_RANK = 0
FEEDBACK_RANK = 1


class TrainingRow(NamedTuple):
    item: Item
    event_time: float  # epoch seconds
    rank: int  # BASE_RANK or FEEDBACK_RANK


def precedence(event_time: float, rank: int, order: int) -> tuple[float, int, int]:
    """Of two rows for one item id, the one with the larger key wins: newest event, then feedback over base
    data, then the row read later."""
    return (event_time, rank, order)


def event_time_of(obj: dict, default: float) -> float:
    raw = obj.get(EVENT_TIME_FIELD)
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise ItemError(f"'{EVENT_TIME_FIELD}' must be an RFC 3339 string")
    try:
        return parse_rfc3339(raw).timestamp()
    except ValueError:
        raise ItemError(f"'{EVENT_TIME_FIELD}' is not an RFC 3339 time: {raw[:40]!r}") from None


def parse_training_line(line: str | bytes, default_time: float, rank: int) -> TrainingRow | None:
    """One line of training data (text, or bytes decoded here); None for a blank line; ItemError saying why a
    line is not a row."""
    line = decode_line(line)
    if not line.strip():
        return None
    try:
        obj = jsonl.loads(line)
    except jsonl.NotJson as exc:
        raise ItemError(f"not JSON: {exc}") from None
    item = parse_item(obj, labeled=True)
    return TrainingRow(item, event_time_of(obj, default_time), rank)


def training_rows(
    source: str, lines: Iterable[str | bytes], default_time: float, rank: int, invalid: list[dict]
) -> Iterator[TrainingRow]:
    """Parse a stream of lines; bad ones are appended to `invalid` with where and why."""
    for number, line in enumerate(lines, start=1):
        try:
            row = parse_training_line(line, default_time, rank)
        except ItemError as exc:
            invalid.append({"source": source, "line": number, "error": str(exc)})
            continue
        if row is not None:
            yield row


@dataclass
class LabeledRows:
    items: list[Item] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)  # {"source", "line", "error"}

    def add_lines(self, source: str, lines: Iterable[str | bytes]) -> None:
        self.items.extend(row.item for row in training_rows(source, lines, 0.0, BASE_RANK, self.invalid))


def dumps(items: Iterable[Item]) -> str:
    """Labeled rows as JSONL, the form `add_lines` reads back."""
    return jsonl.dumps(item.to_json() for item in items)
