"""JSON Lines, written one way everywhere: UTF-8 as is (no \\u escapes), one object per line, a final newline."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

CONTENT_TYPE = "application/x-ndjson"


def dumps(records: Iterable[Any]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
