"""Pretrained word vectors for an item's title: outside knowledge a model trained on a few thousand titles lacks.

A title of a dozen characters shares few n-grams with the titles a model was trained on; a pretrained vector
knows that 芸能人 and 女優 are alike although no training title held both. The feature is the mean of the vectors
of the words in the text's first line (an item's title: `Item.text()` starts with it), times `weight`, appended to
the TF-IDF row (zeros where no word is found). It is linear in the vectors on purpose: a linear model's weights
fold into the table (`with_table`), so a predictor adds the mean of a few per-label scores per word instead of
averaging 300-dimensional vectors (the l2-normalised mean scored the same on livedoor titles). Words are found without a segmenter or dictionary at serving: greedy
longest match, left to right, against the table's own vocabulary (a code point no word starts at is skipped).
On livedoor titles this matched a morphological analyser's segmentation (bench/titles_study.py).

The format, named by `FORMAT` and stored with each model that uses it:
- the first line is the text up to its first "\\n", at most `HEAD_MAX_CODE_POINTS` code points, not lowercased;
- a word's key is 64-bit FNV-1a over its code points (`h = 0xCBF29CE484222325; h = (h ^ c) * 0x100000001B3`,
  modulo 2^64); `hashes` holds the vocabulary's keys sorted, `rows[i]` the row of `vectors` of `hashes[i]` (many
  words may share a row), `vectors` is (rows, dimensions) float16, float32 or float64 (the feature is computed in
  float64 from the stored numbers, in training and serving alike); words are at most `max_length` code points.

numpy only: the predictors import it. The arrays travel in `model.npz` (inference format v4) and in the pipeline.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

FORMAT = "word-vectors-fnv1a64-greedy-longest-v1"
HEAD_MAX_CODE_POINTS = 1_000  # an item's title is at most this long (core.items.TITLE_MAX_CHARS)
MAX_WORD_LENGTH = 16
_FNV64_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV64_PRIME = np.uint64(0x100000001B3)
# Most candidate substrings are not words: a bitmap of the keys' top bits turns them away with one gather instead of
# a binary search. Packed eight to a byte (2^23 bits, 1 MB, about 6 % set for 480k words), it stays in cache: the
# same bitmap as one byte per bit (8 MB) made every probe a cache miss.
_FILTER_BITS = 23


def word_keys(words: Sequence[str]) -> np.ndarray:
    """Each word's 64-bit key, as the matcher computes it (uint64; array arithmetic wraps modulo 2^64)."""
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    codes = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    starts = np.zeros(len(words), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    keys = np.full(len(words), _FNV64_OFFSET, dtype=np.uint64)
    for position in range(int(lengths.max(initial=0))):
        alive = lengths > position
        keys[alive] = (keys[alive] ^ codes[starts[alive] + position]) * _FNV64_PRIME
    return keys


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(code points of all the texts' first lines, one after another; offsets of each, len(texts) + 1)."""
    # Cut first, then split: a 20,000-character description is never copied.
    heads = [text[:HEAD_MAX_CODE_POINTS].split("\n", 1)[0] for text in texts]
    offsets = np.zeros(len(heads) + 1, dtype=np.int64)
    np.cumsum([len(head) for head in heads], out=offsets[1:])
    codes = np.frombuffer("".join(heads).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return codes, offsets


def _greedy_walk(longest: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The words the greedy walk takes, given the length of the longest word at each code point (0: none): from
    each match jump past it, else to the next code point. (indptr per text, code point each word starts at)."""
    lengths = longest.tolist()
    taken: list[int] = []
    indptr = np.zeros(len(offsets), dtype=np.int64)
    for text, (begin, end) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist())):
        at = begin
        while at < end:
            if lengths[at]:
                taken.append(at)
                at += lengths[at]
            else:
                at += 1
        indptr[text + 1] = len(taken)
    return indptr, np.asarray(taken, dtype=np.int64)


class WordVectors:
    """A vocabulary of pretrained word vectors and the title feature built from it; immutable, thread-safe."""

    def __init__(self, hashes: np.ndarray, rows: np.ndarray, vectors: np.ndarray, max_length: int, weight: float = 1.0):
        hashes, rows = np.asarray(hashes), np.asarray(rows)
        if hashes.dtype != np.uint64 or hashes.ndim != 1 or rows.shape != hashes.shape:
            raise ValueError("word vectors: `hashes` must be uint64 keys with one entry of `rows` each")
        if hashes.size and not (np.diff(hashes) > 0).all():
            raise ValueError("word vectors: `hashes` must be sorted and unique")
        if vectors.ndim != 2 or vectors.dtype not in (np.float16, np.float32, np.float64) or vectors.shape[0] == 0:
            raise ValueError(
                f"word vectors: `vectors` must be a non-empty float16, float32 or float64 matrix, not "
                f"{vectors.dtype} {vectors.shape}"
            )
        if rows.size and (rows.min() < 0 or rows.max() >= vectors.shape[0]):
            raise ValueError("word vectors: a row index falls outside `vectors`")
        if not 1 <= max_length <= MAX_WORD_LENGTH or not weight > 0:
            raise ValueError(
                f"word vectors: max_length {max_length} outside 1..{MAX_WORD_LENGTH} or weight {weight} not positive"
            )
        self.hashes, self.rows, self.vectors = hashes, rows.astype(np.int32, copy=False), vectors
        self.max_length, self.weight = int(max_length), float(weight)
        bits = np.zeros(1 << _FILTER_BITS, dtype=bool)
        bits[hashes >> np.uint64(64 - _FILTER_BITS)] = True
        self._filter = np.packbits(bits, bitorder="little")

    def with_table(self, table: np.ndarray) -> WordVectors:
        """The same vocabulary over another table of the same rows: `features` then gives `weight` × the mean of
        its rows. With `vectors @ coef.T` (per-label weights of the feature's columns), that is the feature's
        contribution to each label's decision, exactly as the model computes it, up to float64 rounding."""
        if table.shape[0] != self.vectors.shape[0]:
            raise ValueError(f"a table of {table.shape[0]} rows for a vocabulary of {self.vectors.shape[0]}")
        return WordVectors(self.hashes, self.rows, table, self.max_length, self.weight)

    @classmethod
    def from_words(
        cls,
        words: Sequence[str],
        rows: np.ndarray,
        vectors: np.ndarray,
        weight: float = 1.0,
        max_length: int = MAX_WORD_LENGTH,
    ) -> WordVectors:
        """From a vocabulary: `rows[i]` is the row of `vectors` of `words[i]`. Words longer than `max_length`
        (rare compounds, URLs) and empty or multi-line words are left out; two words of one key are refused."""
        kept = [i for i, word in enumerate(words) if 0 < len(word) <= max_length and "\n" not in word]
        keys = word_keys([words[i] for i in kept])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        clash = np.flatnonzero(np.diff(keys) == 0)
        if clash.size:
            a, b = (words[kept[order[clash[0] + k]]] for k in (0, 1))
            raise ValueError(f"word vectors: {a!r} and {b!r} share a 64-bit key")
        longest = max((len(words[i]) for i in kept), default=1)
        return cls(keys, np.asarray(rows)[kept][order], np.asarray(vectors), longest, weight)

    # -- storage: plain arrays, loaded with allow_pickle=False -----------------------------------------------------

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            f"{prefix}hashes": self.hashes,
            f"{prefix}rows": self.rows,
            f"{prefix}vectors": self.vectors,
            f"{prefix}max_length": np.asarray(self.max_length, dtype=np.int64),
            f"{prefix}weight": np.asarray(self.weight, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "") -> WordVectors:
        return cls(
            arrays[f"{prefix}hashes"],
            arrays[f"{prefix}rows"],
            arrays[f"{prefix}vectors"],
            int(arrays[f"{prefix}max_length"]),
            float(arrays[f"{prefix}weight"]),
        )

    def to_bytes(self) -> bytes:
        """A vectors file (npz), as `saikika word-vectors` writes and `SAIKIKA_WORD_VECTORS` names."""
        buffer = io.BytesIO()
        np.savez(buffer, format=np.asarray(FORMAT), **self.to_arrays())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> WordVectors:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if "format" not in arrays or str(arrays["format"]) != FORMAT:
                raise ValueError(f"not a word-vectors file of format {FORMAT}")
            return cls.from_arrays(arrays)

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    # -- the feature ------------------------------------------------------------------------------------------------

    def matches(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The words found in each text's first line, as CSR parts: (indptr, row of `vectors` of each word)."""
        indptr, rows, _, _ = self.spans(texts)
        return indptr, rows

    def spans(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`matches`, plus where each word is: (indptr, rows, start of each word in its text, its length)."""
        codes, offsets = _code_points(texts)
        total, width = codes.shape[0], self.max_length
        longest = np.zeros(total, dtype=np.int64)  # length of the longest word starting at each code point
        found_row = np.zeros(total, dtype=np.int32)
        if total:
            # keys[i, n - 1]: the key of the n code points from i. A few operations on whole columns, then one
            # filter gather and one binary search for all (start, length) pairs at once: a single title costs
            # about as many array operations as a batch.
            padded = np.zeros(total + width, dtype=np.uint64)
            padded[:total] = codes
            keys = np.empty((total, width), dtype=np.uint64)
            running = np.full(total, _FNV64_OFFSET, dtype=np.uint64)
            for column in range(width):
                running = (running ^ padded[column : column + total]) * _FNV64_PRIME
                keys[:, column] = running
            room = np.repeat(offsets[1:], np.diff(offsets)) - np.arange(total)  # code points left in the text
            inside = np.arange(1, width + 1) <= room[:, None]  # pairs that stay within their own text
            top = (keys >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
            in_filter = (self._filter[top >> 3] >> (top & 7).astype(np.uint8)) & 1
            candidates = np.flatnonzero(inside & in_filter.astype(bool))
            wanted = keys.reshape(-1)[candidates]
            slots = np.minimum(np.searchsorted(self.hashes, wanted), self.hashes.shape[0] - 1)
            hit = self.hashes[slots] == wanted
            pairs, slots = candidates[hit], slots[hit]
            # In index order, a start's pairs run from its shortest word to its longest: keep each start's last.
            starts = pairs // width
            last = np.ones(starts.shape[0], dtype=bool)
            last[:-1] = starts[1:] != starts[:-1]
            longest[starts[last]] = pairs[last] % width + 1
            found_row[starts[last]] = self.rows[slots[last]]
        indptr, at = _greedy_walk(longest, offsets)
        return indptr, found_row[at], at - np.repeat(offsets[:-1], np.diff(indptr)), longest[at]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, dimensions) float64: `weight` × the mean word vector of each first line; zeros where no word was
        found."""
        indptr, rows = self.matches(texts)
        out = np.zeros((len(texts), self.dimensions))
        words = np.diff(indptr)
        filled = np.flatnonzero(words)
        if filled.size:
            sums = np.add.reduceat(self.vectors[rows].astype(np.float64), indptr[filled], axis=0)
            out[filled] = sums * (self.weight / words[filled])[:, None]
        return out
