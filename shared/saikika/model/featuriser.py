"""Hashed character n-gram counts, vectorised across a whole batch: numpy array operations over every
text's code points at once, no Python loop per n-gram. Training (as a scikit-learn transformer, in
`saikika.model.training`) and serving (the inference artifact's scorer) both call this one implementation,
so they agree by construction.

The format, named by `FORMAT` and stored with each model:
- a text is lowercased (if `lowercase`) and every run of two or more white-space characters becomes one
  space (scikit-learn's character analyzer does the same);
- its n-grams, n in `ngram_range`, are runs of n consecutive code points inside the text (never across
  two texts); lone surrogates count as code points;
- an n-gram's hash is 32-bit FNV-1 over its code points (`h = 0x811C9DC5; h = h * 0x01000193 ^ c`), and its
  feature is the top `bits` bits of `h * 0x9E3779B1` (Fibonacci hashing), all modulo 2^32;
- the output is the count of each feature per text, as CSR parts (`indptr`, `indices`, `counts`), with
  each row's features in increasing order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

FORMAT = "char-ngram-fnv1-32"
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's VectorizerMixin._white_spaces
_FNV_OFFSET = np.uint32(0x811C9DC5)
_FNV_PRIME = np.uint32(0x01000193)
_FIBONACCI = np.uint32(0x9E3779B1)
MIN_BITS, MAX_BITS = 10, 24
_NONE = np.uint32(0xFFFFFFFF)
_SORT_GROUP = 2048
# Code points featurised together: the temporaries (≈ 40 bytes a code point) stay within a few MB.
_CHUNK_CODE_POINTS = 1 << 16


class HashedCounts(NamedTuple):
    """Per-text feature counts in CSR form: row i holds `indices[indptr[i]:indptr[i+1]]` (increasing)."""

    indptr: np.ndarray  # int64, len(texts) + 1
    indices: np.ndarray  # int32
    counts: np.ndarray  # int32


class CharNgramHasher:
    """Counts hashed character n-grams; immutable and thread-safe once built."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), bits: int = 18, lowercase: bool = True):
        min_n, max_n = (int(n) for n in ngram_range)
        if not 1 <= min_n <= max_n <= 8:
            raise ValueError(f"ngram_range must satisfy 1 <= min <= max <= 8, got {ngram_range}")
        if not MIN_BITS <= int(bits) <= MAX_BITS:
            raise ValueError(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")
        self.ngram_range = (min_n, max_n)
        self.bits = int(bits)
        self.lowercase = bool(lowercase)
        self.n_features = 1 << self.bits
        # A sort key packs (text within chunk, feature) into 32 bits; the all-ones key is kept free as the
        # marker of "no n-gram here", so a chunk holds one text fewer than the key space allows.
        self._texts_per_chunk = (1 << (32 - self.bits)) - 1

    def normalise(self, text: str) -> str:
        return _WHITE_SPACES.sub(" ", text.lower() if self.lowercase else text)

    def __call__(self, texts: Sequence[str]) -> HashedCounts:
        texts = [self.normalise(text) for text in texts]
        parts = [self._chunk(texts[start:stop]) for start, stop in self._chunks(texts)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return HashedCounts(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32))
        offsets = np.cumsum([0] + [part.indices.shape[0] for part in parts[:-1]])
        return HashedCounts(
            np.concatenate([parts[0].indptr] + [p.indptr[1:] + o for p, o in zip(parts[1:], offsets[1:])]),
            np.concatenate([part.indices for part in parts]),
            np.concatenate([part.counts for part in parts]),
        )

    def _chunks(self, texts: list[str]) -> list[tuple[int, int]]:
        """Runs of whole texts with at most _CHUNK_CODE_POINTS code points (or one longer text) and at most
        _texts_per_chunk texts: bounded temporaries, whatever the batch."""
        bounds, start, size = [], 0, 0
        for index, text in enumerate(texts):
            if index > start and (size + len(text) > _CHUNK_CODE_POINTS or index - start >= self._texts_per_chunk):
                bounds.append((start, index))
                start, size = index, 0
            size += len(text)
        if start < len(texts):
            bounds.append((start, len(texts)))
        return bounds

    def _chunk(self, texts: list[str]) -> HashedCounts:
        n_texts = len(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n_texts)
        # One array of every code point in the chunk; surrogatepass keeps lone surrogates instead of failing.
        codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        total = codes.shape[0]
        ends = np.cumsum(lengths)
        end_of_text = np.repeat(ends, lengths)
        row_key = np.repeat(np.arange(n_texts, dtype=np.uint32), lengths) << np.uint32(self.bits)
        position = np.arange(total)
        shift = np.uint32(32 - self.bits)
        min_n, max_n = self.ngram_range
        # keys[i, n - min_n]: the n-gram starting at code point i, or _NONE where it would leave its text.
        # Row-major, so each text's keys are one contiguous run: texts can be sorted a group at a time.
        keys = np.full((total, max_n - min_n + 1), _NONE, dtype=np.uint32)
        hashes = np.full(total, _FNV_OFFSET, dtype=np.uint32)
        for n in range(1, max_n + 1):
            # hashes[i] now covers codes[i : i + n] (numpy's uint32 arithmetic wraps modulo 2^32).
            hashes = (hashes[: total - n + 1] * _FNV_PRIME) ^ codes[n - 1:]
            if n >= min_n:
                starts = hashes.shape[0]
                keys[:starts, n - min_n] = np.where(position[:starts] + n <= end_of_text[:starts],
                                                    row_key[:starts] | ((hashes * _FIBONACCI) >> shift), _NONE)
        keys = keys.reshape(-1)
        # Sorting groups of about _SORT_GROUP keys (whole texts) is several times faster than one large sort,
        # and as good: a group's keys all sort after the previous group's (the text is in the high bits).
        width = max_n - min_n + 1
        cuts = np.searchsorted(ends * width, np.arange(_SORT_GROUP, total * width, _SORT_GROUP))
        bounds = np.unique(np.concatenate(([0], ends[cuts[cuts < n_texts]] * width, [total * width])))
        for start, stop in zip(bounds[:-1], bounds[1:]):
            keys[start:stop].sort()
        keys = keys[keys != _NONE]
        first = np.ones(keys.shape[0], dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        at = np.flatnonzero(first)
        unique = keys[at]
        counts = np.diff(at, append=keys.shape[0]).astype(np.int32)
        indices = (unique & np.uint32(self.n_features - 1)).astype(np.int32)
        # Row i starts at the first key >= i << bits.
        indptr = np.searchsorted(unique, np.arange(n_texts + 1, dtype=np.uint64) << np.uint64(self.bits))
        return HashedCounts(indptr, indices, counts)
