"""Hashed character n-gram counts, vectorised across a batch: numpy array operations over every text's
code points at once, no Python loop per n-gram and no sort. Training (as a scikit-learn transformer, in
`saikika.model.ngram_transformer`) and serving (the inference artifact's scorer) both call this one
implementation, so they agree by construction.

The format, named by `FORMAT` and stored with each model:
- a text is lowercased (if `lowercase`, exactly as `str.lower`) and every run of two or more white-space
  characters (`str.isspace`) becomes one space (scikit-learn's character analyzer does the same);
- its n-grams, n in `ngram_range`, are runs of n consecutive code points inside the text (never across
  two texts); lone surrogates count as code points;
- an n-gram's hash is 32-bit FNV-1 over its code points (`h = 0x811C9DC5; h = h * 0x01000193 ^ c`), and its
  feature is the top `bits` bits of `h * 0x9E3779B1` (Fibonacci hashing), all modulo 2^32;
- the output is the count of each feature per text, as CSR parts (`indptr`, `indices`, `counts`); a row
  holds each of its features once, in the order of the feature's last n-gram in the text.

How it counts without sorting: a chunk of texts gets one table slot of 2^bits entries per text. Every
n-gram writes its own position into the table entry of (its text's slot, its feature); read back, all the
n-grams of one feature in one text find the same position, the representative, and counting the
representatives (`bincount`) gives the counts. Writes precede reads for every entry used, so a table is
never cleared. A call borrows a table from a small free list and gives it back (the predictors serve requests
from many threads: memory follows the calls in progress, not the threads that ever ran one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

FORMAT = "char-ngram-fnv1-32"
_FNV_OFFSET = np.uint32(0x811C9DC5)
_FNV_PRIME = np.uint32(0x01000193)
_FIBONACCI = np.uint32(0x9E3779B1)
MIN_BITS, MAX_BITS = 10, 24
# Table entries (int32) of one call: 16 MB, so 2^18-feature models count 16 texts per chunk. Smaller tables
# stay in cache but leave more chunks (a chunk costs about 25 array operations, whatever its size): on livedoor
# articles 2^21 to 2^22 were equally fast, on short marketplace texts 2^22 was the fastest.
_TABLE_ENTRIES = 1 << 22
_TABLES_KEPT = 4
# Code points counted together: the temporaries (≈ 40 bytes a code point) stay within a few MB.
_CHUNK_CODE_POINTS = 1 << 16
# Code points normalised together (≈ 12 bytes a code point).
_BLOCK_CODE_POINTS = 1 << 20

# str.isspace() holds for these code points only, all below U+3001.
_SPACE_TABLE = np.zeros(0x3002, dtype=bool)
_SPACE_TABLE[[c for c in range(0x3001) if chr(c).isspace()]] = True
# str.lower() maps one code point to one everywhere in the BMP but for U+0130 (İ → "i̇", two code points)
# and U+03A3 (Σ, whose lower case depends on its neighbours); astral code points change only in this range.
# A chunk holding any of these is lowercased by str.lower() itself.
_LOWER_IRREGULAR = np.array([0x130, 0x3A3], dtype=np.uint32)
_ASTRAL_CASED = (0x10400, 0x1E922)
_NEEDS_STR_LOWER = np.zeros(0x10001, dtype=bool)  # indexed by min(code point, 0x10000)
_NEEDS_STR_LOWER[_LOWER_IRREGULAR] = True


def _bmp_lowercase_table() -> np.ndarray:
    codes = np.arange(0x10000, dtype=np.uint32)
    codes[_LOWER_IRREGULAR] = 0x20  # mapped elsewhere; kept out so that the rest lowers one to one
    lowered = codes.tobytes().decode("utf-32-le", "surrogatepass").lower().encode("utf-32-le", "surrogatepass")
    table = np.frombuffer(lowered, dtype=np.uint32).copy()
    table[_LOWER_IRREGULAR] = _LOWER_IRREGULAR
    return table


_LOWER_BMP = _bmp_lowercase_table()


class HashedCounts(NamedTuple):
    """Per-text feature counts in CSR form: row i holds `indices[indptr[i]:indptr[i+1]]`, each feature once."""

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
        self._texts_per_chunk = max(1, _TABLE_ENTRIES >> self.bits)
        self._free_tables: list[np.ndarray] = []  # list.pop and list.append are atomic: no lock needed

    def __call__(self, texts: Sequence[str]) -> HashedCounts:
        parts = [counts for _, _, counts in self.chunks(texts)]
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

    def chunks(self, texts: Sequence[str]) -> Iterator[tuple[int, int, HashedCounts]]:
        """(start, stop, counts of texts[start:stop]) for consecutive runs of texts: what the scorer consumes
        while the chunk's arrays are still in cache."""
        table = self._borrow_table()
        try:
            for block_start, block_stop in runs([len(text) for text in texts], _BLOCK_CODE_POINTS, len(texts)):
                # Normalised a block at a time (a few array operations for many texts), counted a chunk at a time.
                codes, lengths = self._code_points(texts[block_start:block_stop])
                offsets = np.concatenate(([0], np.cumsum(lengths)))
                for start, stop in runs(lengths.tolist(), _CHUNK_CODE_POINTS, self._texts_per_chunk):
                    yield (
                        block_start + start,
                        block_start + stop,
                        self._chunk(codes[offsets[start] : offsets[stop]], lengths[start:stop], table),
                    )
        finally:
            if len(self._free_tables) < _TABLES_KEPT:
                self._free_tables.append(table)

    def occurrences(self, text: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        """Every n-gram occurrence of one text, for explanations: (the normalised text, each occurrence's start and
        length in it, its feature). The same hash as `_chunk` (its feature counts are these features counted);
        tests/unit/test_explain.py holds the two to each other."""
        codes, _ = self._code_points([text])
        total = codes.shape[0]
        min_n, max_n = self.ngram_range
        starts, lengths, features = [], [], []
        hashes = np.full(total, _FNV_OFFSET, dtype=np.uint32)
        shift = np.uint32(32 - self.bits)
        for n in range(1, min(max_n, total) + 1):
            hashes = (hashes[: total - n + 1] * _FNV_PRIME) ^ codes[n - 1 :]
            if n >= min_n:
                starts.append(np.arange(hashes.shape[0], dtype=np.int64))
                lengths.append(np.full(hashes.shape[0], n, dtype=np.int64))
                features.append(((hashes * _FIBONACCI) >> shift).astype(np.int32))
        normalised = codes.tobytes().decode("utf-32-le", "surrogatepass")
        if not features:
            empty = np.zeros(0, dtype=np.int64)
            return normalised, empty, empty, empty.astype(np.int32)
        return normalised, np.concatenate(starts), np.concatenate(lengths), np.concatenate(features)

    def _borrow_table(self) -> np.ndarray:
        try:
            return self._free_tables.pop()
        except IndexError:
            # The last entry is where n-grams that would leave their text go: counted, then dropped.
            return np.empty((self._texts_per_chunk << self.bits) + 1, dtype=np.int32)

    def _code_points(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The normalised texts' code points, concatenated, and each text's length."""
        joined = "".join(texts)
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        if self.lowercase and codes.shape[0]:
            bmp = np.minimum(codes, 0x10000)
            astral = bmp.max() == 0x10000
            if _NEEDS_STR_LOWER[bmp].any() or (
                astral and ((codes >= _ASTRAL_CASED[0]) & (codes < _ASTRAL_CASED[1])).any()
            ):
                lowered = [text.lower() for text in texts]
                codes = np.frombuffer("".join(lowered).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
                lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=len(texts))
            else:
                codes = np.where(bmp < 0x10000, _LOWER_BMP.take(bmp, mode="clip"), codes)
        return _collapse_white_space(codes, lengths)

    def _chunk(self, codes: np.ndarray, lengths: np.ndarray, table: np.ndarray) -> HashedCounts:
        n_texts, total = lengths.shape[0], codes.shape[0]
        min_n, max_n = self.ngram_range
        width = max_n - min_n + 1
        outside = table.shape[0] - 1
        ends = np.cumsum(lengths)
        starts = ends - lengths
        slot = np.repeat(np.arange(n_texts, dtype=np.int64) << self.bits, lengths)
        shift = np.uint32(32 - self.bits)
        # keys[i, n - min_n]: the table entry of the n-gram starting at code point i. Row-major, so each
        # text's keys are one contiguous run.
        keys = np.empty((total, width), dtype=np.int64)
        hashes = np.full(total, _FNV_OFFSET, dtype=np.uint32)
        for n in range(1, max_n + 1):
            # hashes[i] now covers codes[i : i + n] (numpy's uint32 arithmetic wraps modulo 2^32).
            hashes = (hashes[: total - n + 1] * _FNV_PRIME) ^ codes[n - 1 :]
            if n < min_n:
                continue
            column = keys[:, n - min_n]
            valid = hashes.shape[0]
            np.right_shift(hashes * _FIBONACCI, shift, out=column[:valid], casting="unsafe")
            column[:valid] += slot[:valid]
            column[valid:] = outside
            if n > 1:  # the last n - 1 code points of a text start no n-gram
                tails = (ends[:, None] - np.arange(1, n)[None, :]).ravel()
                column[tails[tails >= np.repeat(starts, n - 1)]] = outside
        keys = keys.reshape(-1)
        order = np.arange(keys.shape[0], dtype=np.int32)
        table[keys] = order
        representative = table.take(keys)
        counts = np.bincount(representative, minlength=keys.shape[0])
        at = np.flatnonzero((representative == order) & (keys != outside))
        indptr = np.searchsorted(at, np.concatenate(([0], ends)) * width)
        indices = (keys[at] & (self.n_features - 1)).astype(np.int32)
        return HashedCounts(indptr, indices, counts[at].astype(np.int32))


def runs(sizes: Sequence[int], max_size: int, max_count: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) runs of at most `max_count` items whose sizes add up to at most `max_size`
    (or of one larger item). Also how the scorer blocks a chunk's rows."""
    bounds, start, size = [], 0, 0
    for index, item_size in enumerate(sizes):
        if index > start and (size + item_size > max_size or index - start >= max_count):
            bounds.append((start, index))
            start, size = index, 0
        size += item_size
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds


def _collapse_white_space(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every run of two or more white-space code points inside a text becomes one space (U+0020)."""
    space = _SPACE_TABLE[np.minimum(codes, _SPACE_TABLE.shape[0] - 1)]
    follows = np.zeros_like(space)
    np.logical_and(space[1:], space[:-1], out=follows[1:])  # a white space after a white space
    starts = np.cumsum(lengths) - lengths
    follows[starts[lengths > 0]] = False  # not across two texts
    if not follows.any():
        return codes, lengths
    codes = codes.copy()
    codes[np.flatnonzero(follows[1:] & ~follows[:-1])] = 0x20  # a run's first code point (follows[0] is False)
    dropped = np.bincount(np.repeat(np.arange(lengths.shape[0]), lengths)[follows], minlength=lengths.shape[0])
    return codes[~follows], lengths - dropped
