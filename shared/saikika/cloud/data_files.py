"""Labeled JSONL from local files or gs:// URIs (the `saikika train` and `evaluate` inputs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from saikika.core import jsonl
from saikika.core.items import Item
from saikika.core.rows import BASE_RANK, LabeledRows, training_rows


def iter_lines(location: str, project: str | None = None) -> Iterator[bytes]:
    """A file's lines as bytes, streamed (never the whole file in memory): each is decoded on its own, so one
    line that is not UTF-8 is one invalid row, not a failed file."""
    if location.startswith("gs://"):
        from saikika.cloud import gcs

        bucket, _, name = location[5:].partition("/")
        # A command line's input: a stopped emulator is told within seconds (StorageUnreachable).
        yield from gcs.iter_raw_lines(gcs.answering_bucket(project, bucket).blob(name))
        return
    with Path(location).open("rb") as handle:
        yield from handle


def iter_items(locations: Iterable[str], invalid: list[dict], project: str | None = None) -> Iterator[Item]:
    """Every valid labeled row of the files, in order; bad rows are appended to `invalid`."""
    for location in locations:
        yield from (row.item for row in training_rows(location, iter_lines(location, project), 0.0, BASE_RANK, invalid))


def load_rows(locations: Iterable[str], project: str | None = None) -> LabeledRows:
    rows = LabeledRows()
    for location in locations:
        rows.add_lines(location, iter_lines(location, project))
    return rows


def write_jsonl(path: Path, items: Iterable[Item]) -> int:
    records = [item.to_json() for item in items]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(jsonl.dumps(records), encoding="utf-8")
    return len(records)
