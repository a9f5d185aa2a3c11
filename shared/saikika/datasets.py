"""Reading labeled JSONL rows from local files or gs:// URIs, keeping count of bad rows."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from saikika.items import Item, ItemError, parse_item


@dataclass
class LoadedRows:
    items: list[Item] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)  # {"source", "line", "error"}

    def add_lines(self, source: str, lines: Iterable[str]) -> None:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                self.items.append(parse_item(json.loads(line), labeled=True))
            except (json.JSONDecodeError, ItemError) as exc:
                self.invalid.append({"source": source, "line": number, "error": str(exc)})


def read_text(location: str, project: str | None = None) -> str:
    if location.startswith("gs://"):
        from google.cloud import storage

        bucket, _, name = location[5:].partition("/")
        return storage.Client(project=project).bucket(bucket).blob(name).download_as_text()
    return Path(location).read_text(encoding="utf-8")


def load_rows(locations: Iterable[str], project: str | None = None) -> LoadedRows:
    rows = LoadedRows()
    for location in locations:
        rows.add_lines(location, read_text(location, project).splitlines())
    return rows


def write_jsonl(path: Path, items: Iterable[Item]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
