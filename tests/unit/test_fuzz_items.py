"""The item and message parser under hostile input (hypothesis): it never raises, every problem says why, and
what it accepts keeps the documented limits."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from saikika.core import items
from saikika.core.items import parse_message
from tests.hostile import ITEMISH, JSON_VALUES


def check(result, labeled: bool) -> None:
    assert result.items or result.problems
    assert all(isinstance(problem.error, str) and problem.error for problem in result.problems)
    for item in result.items:
        assert 1 <= len(item.id) <= items.ID_MAX_CHARS
        assert len(item.title) <= items.TITLE_MAX_CHARS and len(item.description) <= items.DESCRIPTION_MAX_CHARS
        assert len(item.tags) <= items.TAGS_MAX_COUNT and all(len(t) <= items.TAG_MAX_CHARS for t in item.tags)
        assert item.title.strip() or item.description.strip() or any(t.strip() for t in item.tags)
        assert (item.labels is not None) is labeled


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_any_bytes(data, labeled):
    check(parse_message(data, labeled=labeled), labeled)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON_VALUES, ITEMISH, st.lists(ITEMISH, max_size=5).map(lambda xs: {"items": xs})), st.booleans())
def test_any_json(value, labeled):
    # Raw UTF-8 (a lone surrogate then makes it invalid UTF-8: rejected as such), and \\u-escaped (always valid).
    raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    check(parse_message(raw, labeled=labeled), labeled)
    result = parse_message(json.dumps(value).encode(), labeled=labeled)
    check(result, labeled)
    if isinstance(value, dict) and isinstance(value.get("items"), list) and 1 <= len(value["items"]) <= 1000:
        # Every entry is accounted for: predicted, or rejected with its index.
        assert len(result.items) + len(result.problems) == len(value["items"])


def test_nesting_and_size_at_their_limits():
    [problem] = parse_message(b"[" * 100_000 + b"]" * 100_000).problems
    assert "nested too deeply" in problem.error
    [problem] = parse_message(b" " * (items.MESSAGE_MAX_BYTES + 1)).problems
    assert "more than the limit" in problem.error
    at_limit = {
        "id": "x" * items.ID_MAX_CHARS,
        "title": "t" * items.TITLE_MAX_CHARS,
        "tags": ["g" * items.TAG_MAX_CHARS] * items.TAGS_MAX_COUNT,
    }
    assert len(parse_message(json.dumps(at_limit).encode()).items) == 1
