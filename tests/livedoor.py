"""The livedoor news corpus (../shared/data) as items: the text starts with the title line, the rest is the
description."""

from __future__ import annotations

from saikika.core.items import Item


def livedoor_item(record: dict, titles_only: bool = False) -> Item:
    description = record["text"][len(record["title"]) :].strip()
    return Item(
        id=record["id"],
        title=record["title"],
        description="" if titles_only else description,
        labels=tuple(record["labels"]),
    )
