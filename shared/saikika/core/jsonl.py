"""JSON Lines, written one way everywhere (UTF-8 as is, no \\u escapes, one object per line, a final newline),
and untrusted JSON read one way everywhere (`loads`: every failure is a `NotJson` with a reason)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from saikika.core.errors import NotJson  # raised here; importable from here as before

CONTENT_TYPE = "application/x-ndjson"


def loads(text: str | bytes) -> Any:
    """Parse untrusted JSON. Deep nesting exhausts Python's recursion limit long before any size limit (2 KB
    of brackets will do): that is bad input too, not a crash."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise NotJson("nested too deeply") from exc


def lines(text: str) -> list[str]:
    """The lines of JSONL text, split at "\\n" alone: `str.splitlines` also splits at U+2028, U+0085 and other
    separators that `dumps` writes as they are inside strings, which would cut a record in two. Blank lines are
    kept (line numbers in error reports stay right); the empty rest after a final newline is not a line."""
    found = text.split("\n")
    return found[:-1] if found and found[-1] == "" else found


def dumps(records: Iterable[Any]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
