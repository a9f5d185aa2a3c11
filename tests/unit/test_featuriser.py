"""The featuriser against a plain-Python reading of its documented format, on edge cases and on texts
hypothesis makes (every Unicode class, very short and very long)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saikika.model import featuriser
from saikika.model.featuriser import CharNgramHasher

EDGE_CASES = [
    "",
    " ",
    "a",
    "ab",
    "Hello  World\t\tx",
    "防水 ワイヤレス スピーカー",
    "🙂 emoji ✨ 👩‍👩‍👧",
    "e\u0301 combining",
    "ＡＢＣ　全角　ｶﾀｶﾅ",
    "\ud800 lone surrogate \udfff",
    "\x00 nul",
    "İstanbul ß ẞ",
    "x" * 5000,
    "\n\n\n",
]


def reference(text: str, ngram_range=(1, 3), bits=18, lowercase=True) -> Counter:
    """The documented format, one n-gram at a time in plain Python."""
    text = re.sub(r"\s\s+", " ", text.lower() if lowercase else text)
    out: Counter = Counter()
    for n in range(ngram_range[0], ngram_range[1] + 1):
        for i in range(len(text) - n + 1):
            h = 0x811C9DC5
            for ch in text[i : i + n]:
                h = ((h * 0x01000193) & 0xFFFFFFFF) ^ ord(ch)
            out[((h * 0x9E3779B1) & 0xFFFFFFFF) >> (32 - bits)] += 1
    return out


def rows(counts) -> list[dict[int, int]]:
    return [
        dict(zip(counts.indices[a:b].tolist(), counts.counts[a:b].tolist()))
        for a, b in zip(counts.indptr[:-1], counts.indptr[1:])
    ]


@pytest.mark.parametrize("ngram_range, bits", [((1, 3), 18), ((1, 4), 20), ((2, 5), 12), ((1, 1), 10)])
def test_matches_the_documented_format_on_edge_cases(ngram_range, bits):
    counts = CharNgramHasher(ngram_range, bits)(EDGE_CASES)
    assert rows(counts) == [dict(reference(t, ngram_range, bits)) for t in EDGE_CASES]
    for a, b in zip(counts.indptr[:-1], counts.indptr[1:]):
        assert np.unique(counts.indices[a:b]).shape[0] == b - a  # each feature once within a row


# Every Unicode category, lone surrogates (category Cs, which text strategies leave out by default) included.
ANY_CODE_POINT = st.one_of(st.characters(exclude_categories=()), st.characters(categories=["Cs"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=ANY_CODE_POINT, max_size=300), max_size=12))
def test_matches_the_documented_format_on_any_unicode(texts):
    assert rows(CharNgramHasher()(texts)) == [dict(reference(t)) for t in texts]


@pytest.mark.parametrize(
    "texts_per_chunk, code_points_per_chunk, code_points_per_block",
    [(3, 1 << 16, 1 << 20), (1000, 7, 1 << 20), (2, 1, 1), (1, 1 << 16, 50)],
)
def test_chunks_do_not_change_the_result(monkeypatch, texts_per_chunk, code_points_per_chunk, code_points_per_block):
    texts = EDGE_CASES * 5
    whole = CharNgramHasher((1, 3), 20)(texts)
    chunked = CharNgramHasher((1, 3), 20)
    chunked._texts_per_chunk = texts_per_chunk
    monkeypatch.setattr(featuriser, "_CHUNK_CODE_POINTS", code_points_per_chunk)
    monkeypatch.setattr(featuriser, "_BLOCK_CODE_POINTS", code_points_per_block)
    assert rows(whole) == rows(chunked(texts))


def test_the_vectorised_lowercase_is_str_lower_for_every_code_point():
    """The table path (most text) and the str.lower path (İ, Σ, cased astral scripts) against str.lower,
    code point by code point, white space aside."""
    hasher = CharNgramHasher((1, 1), 24)
    for first in range(0, 0x110000, 0x8000):
        text = "".join(chr(c) for c in range(first, min(first + 0x8000, 0x110000)) if not chr(c).isspace())
        codes, _ = hasher._code_points([text])
        expected = np.frombuffer(text.lower().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        assert np.array_equal(codes, expected), hex(first)


def test_a_final_sigma_depends_on_its_own_text_only():
    """str.lower() gives Σ a context (final σ → ς); two texts side by side in a batch do not share one."""
    texts = ["ΟΔΟΣ", "ΑΒ", "ΣΑ", "ΑΣ ", "x"]
    assert rows(CharNgramHasher()(texts)) == [dict(reference(t)) for t in texts]


def test_ngrams_never_cross_two_texts():
    together = rows(CharNgramHasher((2, 2), 18)(["ab", "cd"]))
    assert together == [dict(reference("ab", (2, 2))), dict(reference("cd", (2, 2)))]


@pytest.mark.parametrize("ngram_range, bits", [((0, 3), 18), ((3, 2), 18), ((1, 9), 18), ((1, 3), 9), ((1, 3), 25)])
def test_bad_parameters_are_refused(ngram_range, bits):
    with pytest.raises(ValueError):
        CharNgramHasher(ngram_range, bits)


def test_threads_counting_at_once_get_what_one_thread_gets():
    """Tables are borrowed per call: calls in flight on many threads never share one."""
    from concurrent.futures import ThreadPoolExecutor

    hasher = CharNgramHasher((1, 3), 18)
    batches = [[f"{i} {text} {i * 7}" for text in EDGE_CASES] * 3 for i in range(24)]
    alone = [rows(hasher(batch)) for batch in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda batch: rows(hasher(batch)), batches * 4))
    assert together == alone * 4
    assert len(hasher._free_tables) <= featuriser._TABLES_KEPT
