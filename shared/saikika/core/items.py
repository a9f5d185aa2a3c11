"""The item contract and the items-message contract. Pure: no I/O.

An item is a JSON object with `id` and at least one non-blank text field among
`title`, `description` and `tags`. Unknown fields are ignored. A message holds one
item or `{"items": [...]}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saikika.core import jsonl
from saikika.core.errors import ItemError  # raised here; importable from here as before

ID_MAX_CHARS = 256
TITLE_MAX_CHARS = 1_000
DESCRIPTION_MAX_CHARS = 20_000
TAGS_MAX_COUNT = 64
TAG_MAX_CHARS = 100
LABELS_MAX_COUNT = 256
LABEL_MAX_CHARS = 100
BATCH_MAX_ITEMS = 1_000
# Eventarc's cap on a Pub/Sub message delivered to a function.
MESSAGE_MAX_BYTES = 512 * 1024

# What counts as blank is Python's str.isspace(), which `str.strip()` below applies. The OpenAPI document states
# the same rule as an explicit class: `\S` means another set in each regex engine (ECMA and Rust leave out
# U+001C-U+001F, which Python counts as space), and a client validating with one of them sent U+001E as a title
# that the function then refused. U+3000 is the last space character (a unit test checks every code point).
_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
NON_BLANK_PATTERN = "[^" + "".join(f"\\u{ord(c):04x}" for c in _SPACE) + "]"


@dataclass(frozen=True)
class Item:
    id: str
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    # Only set for labeled items (training data, feedback); None for items to predict.
    labels: tuple[str, ...] | None = None

    def text(self) -> str:
        """The text the model reads: training and serving must see the same thing."""
        return "\n".join((self.title, self.description, " ".join(self.tags)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
        }
        if self.labels is not None:
            out["labels"] = list(self.labels)
        return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a message: which item (where known) and why."""

    error: str
    index: int | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "error": self.error}


@dataclass
class ParsedMessage:
    items: list[Item] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _string(obj: dict, key: str, limit: int) -> str:
    value = obj.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ItemError(f"'{key}' must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ItemError(f"'{key}' has {len(value)} characters, more than the limit of {limit}")
    return value


def _string_list(obj: dict, key: str, max_count: int, max_chars: int) -> tuple[str, ...]:
    value = obj.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ItemError(f"'{key}' must be a list of strings, got {type(value).__name__}")
    if len(value) > max_count:
        raise ItemError(f"'{key}' has {len(value)} entries, more than the limit of {max_count}")
    for i, entry in enumerate(value):
        if not isinstance(entry, str):
            raise ItemError(f"'{key}[{i}]' must be a string, got {type(entry).__name__}")
        if len(entry) > max_chars:
            raise ItemError(f"'{key}[{i}]' has {len(entry)} characters, more than the limit of {max_chars}")
    return tuple(value)


def parse_item(obj: Any, *, labeled: bool = False) -> Item:
    """Validate one item; raise ItemError with a reason a person can act on."""
    if not isinstance(obj, dict):
        raise ItemError(f"an item must be a JSON object, got {_json_type(obj)}")
    item_id = obj.get("id")
    if not isinstance(item_id, str) or not (1 <= len(item_id) <= ID_MAX_CHARS):
        raise ItemError(f"'id' must be a string of 1 to {ID_MAX_CHARS} characters")
    title = _string(obj, "title", TITLE_MAX_CHARS)
    description = _string(obj, "description", DESCRIPTION_MAX_CHARS)
    tags = _string_list(obj, "tags", TAGS_MAX_COUNT, TAG_MAX_CHARS)
    if not (title.strip() or description.strip() or any(t.strip() for t in tags)):
        raise ItemError("at least one of 'title', 'description' or 'tags' must hold non-blank text")
    labels = None
    if labeled:
        if "labels" not in obj:
            raise ItemError("'labels' is required (an empty list means none of the labels)")
        labels = _string_list(obj, "labels", LABELS_MAX_COUNT, LABEL_MAX_CHARS)
        if any(not label.strip() for label in labels):
            raise ItemError("'labels' must not contain empty strings")
        labels = tuple(dict.fromkeys(labels))
    return Item(id=item_id, title=title, description=description, tags=tags, labels=labels)


def decode_line(raw: bytes | str) -> str:
    """A line read as bytes, as text; ItemError saying where if it is not UTF-8 (the line is rejected, never the
    whole file)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ItemError(f"line is not UTF-8: {exc.reason} at byte {exc.start}") from None


def parse_line(raw: bytes) -> Item | None:
    """One line of an item JSONL file (batch input): the item, None for a blank line, or ItemError saying why
    the line is not one."""
    text = decode_line(raw)
    if not text.strip():
        return None
    try:
        return parse_item(jsonl.loads(text))
    except jsonl.NotJson as exc:
        raise ItemError(f"line is not JSON: {exc}") from None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


def parse_message(data: bytes, *, labeled: bool = False) -> ParsedMessage:
    """Split a message into valid items (in input order) and problems. Never raises on bad input."""
    result = ParsedMessage()
    if len(data) > MESSAGE_MAX_BYTES:
        result.problems.append(Problem(f"message is {len(data)} bytes, more than the limit of {MESSAGE_MAX_BYTES}"))
        return result
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.problems.append(Problem(f"message data is not UTF-8: {exc.reason} at byte {exc.start}"))
        return result
    try:
        body = jsonl.loads(text)
    except jsonl.NotJson as exc:
        result.problems.append(Problem(f"message data is not JSON: {exc}"))
        return result
    parse_batch(body, result, labeled=labeled)
    return result


def parse_batch(body: Any, result: ParsedMessage, *, labeled: bool = False, key: str = "items") -> None:
    """Accept one item or `{key: [...]}` with 1..BATCH_MAX_ITEMS items."""
    if isinstance(body, dict) and key in body:
        entries = body[key]
        if not isinstance(entries, list):
            result.problems.append(Problem(f"'{key}' must be an array, got {_json_type(entries)}"))
            return
        if not 1 <= len(entries) <= BATCH_MAX_ITEMS:
            result.problems.append(Problem(f"'{key}' must hold 1 to {BATCH_MAX_ITEMS} items, got {len(entries)}"))
            return
    elif isinstance(body, dict):
        entries = [body]
    else:
        result.problems.append(Problem(f'expected an item object or {{"{key}": [...]}}, got {_json_type(body)}'))
        return
    parse_entries(entries, result, labeled=labeled)


def parse_entries(entries: list, result: ParsedMessage, *, labeled: bool = False) -> None:
    for index, entry in enumerate(entries):
        try:
            result.items.append(parse_item(entry, labeled=labeled))
        except ItemError as exc:
            raw_id = entry.get("id") if isinstance(entry, dict) else None
            result.problems.append(Problem(str(exc), index=index, id=raw_id if isinstance(raw_id, str) else None))
