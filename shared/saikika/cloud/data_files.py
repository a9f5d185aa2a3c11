"""Labeled JSONL from local files or gs:// URIs (the `saikika train` and `evaluate` inputs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from saikika.core import jsonl
from saikika.core.items import Item
from saikika.core.rows import BASE_RANK, LabeledRows, training_rows


def read_text(location: str, project: str | None = None) -> str:
    if location.startswith("gs://"):
        from google.cloud import storage

        bucket, _, name = location[5:].partition("/")
        return storage.Client(project=project).bucket(bucket).blob(name).download_as_text()
    return Path(location).read_text(encoding="utf-8")


def iter_lines(location: str, project: str | None = None) -> Iterator[str]:
    """A file's lines, streamed (never the whole file in memory)."""
    if location.startswith("gs://"):
        from saikika.cloud import gcs

        bucket, _, name = location[5:].partition("/")
        yield from gcs.iter_lines(gcs.client(project).bucket(bucket).blob(name))
        return
    with Path(location).open(encoding="utf-8", newline="\n") as handle:
        yield from handle


def iter_items(locations: Iterable[str], invalid: list[dict], project: str | None = None) -> Iterator[Item]:
    """Every valid labeled row of the files, in order; bad rows are appended to `invalid`."""
    for location in locations:
        yield from (row.item for row in training_rows(location, iter_lines(location, project), 0.0, BASE_RANK, invalid))


def load_rows(locations: Iterable[str], project: str | None = None) -> LabeledRows:
    rows = LabeledRows()
    for location in locations:
        rows.add_lines(location, jsonl.lines(read_text(location, project)))
    return rows


def write_jsonl(path: Path, items: Iterable[Item]) -> int:
    records = [item.to_json() for item in items]
    path.write_text(jsonl.dumps(records), encoding="utf-8")
    return len(records)
