"""Labeled JSONL rows (training data, feedback, evaluation rows) parsed with the item contract; bad rows
are counted with where they came from and why, never trained on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from saikika.core import jsonl
from saikika.core.items import Item, ItemError, parse_item


@dataclass
class LabeledRows:
    items: list[Item] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)  # {"source", "line", "error"}

    def add_lines(self, source: str, lines: Iterable[str]) -> None:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                self.items.append(parse_item(jsonl.loads(line), labeled=True))
            except (jsonl.NotJson, ItemError) as exc:
                self.invalid.append({"source": source, "line": number, "error": str(exc)})


def dumps(items: Iterable[Item]) -> str:
    """Labeled rows as JSONL, the form `add_lines` reads back."""
    return jsonl.dumps(item.to_json() for item in items)
