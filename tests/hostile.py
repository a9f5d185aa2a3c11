"""Hypothesis strategies for hostile input: Unicode of every class (lone surrogates included), any JSON shape,
item-shaped objects with wrong types and values at and just past each documented limit."""

from __future__ import annotations

from hypothesis import strategies as st

from saikika.core import items

ANY_CODE_POINT = st.one_of(st.characters(exclude_categories=()), st.characters(categories=["Cs"]))
TEXT = st.text(alphabet=ANY_CODE_POINT, max_size=50)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=30,
)
# Item-shaped objects with every field possibly of the wrong type, empty, or at and just past its limit.
BOUNDARY_TEXT = st.sampled_from([0, 1, items.TITLE_MAX_CHARS, items.TITLE_MAX_CHARS + 1]).map(lambda n: "t" * n)
ITEMISH = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(TEXT, st.integers(), st.none(), st.just("x" * items.ID_MAX_CHARS), st.just("x" * 257)),
        "title": st.one_of(TEXT, BOUNDARY_TEXT, JSON_VALUES),
        "description": st.one_of(TEXT, JSON_VALUES),
        "tags": st.one_of(st.lists(TEXT, max_size=70), JSON_VALUES),
        "labels": st.one_of(st.lists(TEXT, max_size=5), JSON_VALUES),
    },
)
