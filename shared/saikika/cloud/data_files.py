"""Labeled JSONL from local files or gs:// URIs (the `saikika train` and `evaluate` inputs)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from saikika.core import jsonl
from saikika.core.items import Item
from saikika.core.rows import LabeledRows


def read_text(location: str, project: str | None = None) -> str:
    if location.startswith("gs://"):
        from google.cloud import storage

        bucket, _, name = location[5:].partition("/")
        return storage.Client(project=project).bucket(bucket).blob(name).download_as_text()
    return Path(location).read_text(encoding="utf-8")


def load_rows(locations: Iterable[str], project: str | None = None) -> LabeledRows:
    rows = LabeledRows()
    for location in locations:
        rows.add_lines(location, read_text(location, project).splitlines())
    return rows


def write_jsonl(path: Path, items: Iterable[Item]) -> int:
    records = [item.to_json() for item in items]
    path.write_text(jsonl.dumps(records), encoding="utf-8")
    return len(records)
