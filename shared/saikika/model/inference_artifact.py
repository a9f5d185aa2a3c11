"""The inference-only artifact, `model.npz`: the fitted pipeline's arithmetic as plain arrays, no scikit-learn.

numpy's format, loaded with `allow_pickle=False`. Four formats:
- `FORMAT_WORDS` (v4, written for models with title word vectors): v3's arrays, plus the vocabulary of
  `saikika.model.word_vectors` (`words_hashes`, `words_rows`, `words_max_length`, `words_weight`: the very
  matcher training featurises with) over `words_vectors`, (vector rows, labels) float64: each vector times the
  model's weights of the feature's columns (`WordVectors.with_table`), so the feature's contribution to the
  decision is `weight` × the mean of its words' rows, with no 300-dimensional vector at serving. Predictors older
  than v4 refuse such a model by its format name rather than score it without its words.
- `FORMAT` (v3, written for models without word vectors): the featuriser's hashed character n-gram counts (`saikika.model.featuriser`,
  the very code training uses), sublinear TF-IDF (l2) and one logistic model per label. Stored:
  `feature_rows`, (features, labels + 1) float32: a feature's coefficient for each label already multiplied by
  its IDF, then its IDF. The scorer gathers one such record per n-gram and uses the array as loaded (no second
  copy of a large model at a hot swap). The pipeline holds the same numbers (its coefficients are these weights
  divided by the IDF, in float64), and the arithmetic is float64, so the two agree to `MAX_SCORE_DIFFERENCE`:
  training proves it on held-out texts before writing the arrays.
- `FORMAT_V2` (read only): the same featuriser, float32 `coef` (labels, features) and `idf`; scored by the same
  code with float64 feature rows built at load (a float32 product is exact in float64; twice v3's memory).
- `FORMAT_V1` (read only): scikit-learn's HashingVectorizer re-implemented with MurmurHash3 (`mmh3`), float64
  weights, one text at a time; equal to its pipeline to 1e-9.

The predictors start without importing scikit-learn or skops, which is most of a cold start.
"""

from __future__ import annotations

import io
import re

import mmh3
import numpy as np

from saikika.model.featuriser import CharNgramHasher, HashedCounts, runs
from saikika.model.word_vectors import WordVectors

FORMAT_WORDS = "saikika-char-ngram-fnv1-tfidf-title-word-vectors-ovr-logistic-v4"
FORMAT = "saikika-char-ngram-fnv1-tfidf-ovr-logistic-v3"
FORMAT_V2 = "saikika-char-ngram-fnv1-tfidf-ovr-logistic-v2"
FORMAT_V1 = "saikika-hashed-char-tfidf-ovr-logistic-v1"
FORMATS = (FORMAT_WORDS, FORMAT, FORMAT_V2, FORMAT_V1)
WORDS_PREFIX = "words_"
# The largest difference between the pipeline's probabilities and the artifact's (any format).
MAX_SCORE_DIFFERENCE = 1e-9
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's VectorizerMixin._white_spaces
# Gathered weights scored at a time (non-zeros × (labels + 1)): 4 MB of float64, whatever the label count.
_SCORE_BLOCK = 1 << 19


class FnvHashScorer:
    """Formats v4, v3 and v2: featuriser counts → sublinear TF-IDF (l2) → one-vs-rest logistic, chunk by chunk;
    in v4 plus the title word vectors' columns."""

    def __init__(
        self, hasher: CharNgramHasher, feature_rows: np.ndarray, intercept: np.ndarray, words: WordVectors | None = None
    ):
        """`feature_rows`: (features, labels + 1), coefficient × IDF for each label then the IDF; float32 (v3) or
        float64 (v2's exact products). `words` (v4): the title words over a table of per-label decision terms."""
        if feature_rows.ndim != 2 or feature_rows.shape[0] != hasher.n_features or feature_rows.shape[1] < 2:
            raise ValueError(f"feature rows of shape {feature_rows.shape} do not fit 2^{hasher.bits} features")
        if intercept.shape != (feature_rows.shape[1] - 1,):
            raise ValueError(f"{feature_rows.shape[1] - 1} labels of weights but {intercept.shape} intercepts")
        self.hasher = hasher
        self.n_labels = feature_rows.shape[1] - 1
        # A feature's numbers are one contiguous record, gathered with one copy (as a void item) instead of one
        # gather per label.
        rows = np.ascontiguousarray(feature_rows)
        self._rows = rows.view(np.dtype((np.void, rows.strides[0]))).reshape(-1)
        self._dtype = rows.dtype
        self.intercept = np.asarray(intercept, dtype=np.float64)
        if words is not None and words.dimensions != self.n_labels:
            raise ValueError(f"word rows of {words.dimensions} terms for {self.n_labels} labels")
        self.words = words

    def __call__(self, texts: list[str]) -> np.ndarray:
        decision = np.tile(self.intercept, (len(texts), 1))
        for start, _, counts in self.hasher.chunks(texts):
            self._add(decision[start:], counts)
        if self.words is not None:
            decision += self.words.features(texts)
        return 1.0 / (1.0 + np.exp(-decision))

    def feature_terms(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One text's decision taken apart, for explanations: (its features, their counts, (features, labels)
        float64 terms tf·weight / ‖tf·idf‖). intercept + the terms' sum (+ the word terms in v4) is `__call__`'s
        decision, up to the order of float64 additions."""
        counts = self.hasher([text])
        indices = counts.indices
        if not indices.shape[0]:
            return indices, counts.counts, np.zeros((0, self.n_labels))
        tf = np.log(counts.counts) + 1.0
        gathered = self._rows.take(indices).view(self._dtype).reshape(indices.shape[0], -1).astype(np.float64)
        weighted = gathered * tf[:, None]
        norm = np.sqrt(np.dot(weighted[:, -1], weighted[:, -1]))
        return indices, counts.counts, weighted[:, :-1] / norm

    def _add(self, decision: np.ndarray, counts: HashedCounts) -> None:
        """Adds each row's Σ tf·weight / ‖tf·idf‖ to `decision`; tf = 1 + log(count), as scikit-learn's sublinear tf."""
        indptr = counts.indptr
        # Whole rows up to the block size (at least one row, however long).
        for first, last in runs(np.diff(indptr).tolist(), _SCORE_BLOCK // (self.n_labels + 1), indptr.shape[0]):
            self._add_rows(decision[first:last], counts, indptr[first : last + 1])

    def _add_rows(self, decision: np.ndarray, counts: HashedCounts, indptr: np.ndarray) -> None:
        begin, end = int(indptr[0]), int(indptr[-1])
        if begin == end:
            return  # no n-grams: an all-zero TF-IDF row, the decision is the intercept (as in scikit-learn)
        tf = np.log(counts.counts[begin:end]) + 1.0
        gathered = self._rows.take(counts.indices[begin:end]).view(self._dtype).reshape(end - begin, -1)
        # Labels along the rows, n-grams along the columns: the products and sums below then run over long
        # contiguous rows, several times faster than over (n-grams, labels) rows of a few numbers each.
        values = np.empty(gathered.shape[::-1], dtype=np.float64)
        values[:] = gathered.T
        values *= tf  # Σ tf·weight per label, and tf·idf in the last row
        values[-1] *= values[-1]
        # reduceat sums from one start to the next, so only rows with at least one n-gram take part.
        filled = np.flatnonzero(np.diff(indptr))
        sums = np.add.reduceat(values, indptr[filled] - begin, axis=1).T
        decision[filled] += sums[:, :-1] / np.sqrt(sums[:, -1:])


class MurmurHashScorer:
    """Format v1 (models trained before the vectorised featuriser): scikit-learn's HashingVectorizer(char,
    MurmurHash3) → TfidfTransformer(sublinear, l2) → one-vs-rest logistic, re-implemented one text at a time."""

    def __init__(
        self, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray, ngram_range: tuple[int, int], lowercase: bool
    ):
        self.idf = idf
        self.coef_t = np.ascontiguousarray(coef.T)  # (n_features, n_labels): one row gather per feature
        self.intercept = intercept
        self.min_n, self.max_n = ngram_range
        self.lowercase = lowercase
        self.n_features = idf.shape[0]

    def _ngrams(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        text = _WHITE_SPACES.sub(" ", text)
        length = len(text)
        grams = list(text) if self.min_n == 1 else []
        for n in range(max(self.min_n, 2), min(self.max_n, length) + 1):
            grams.extend(text[i : i + n] for i in range(length - n + 1))
        return grams

    def _features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # mmh3 hashes a str as its UTF-8 bytes but crashes the process on a lone surrogate: encode here, with
        # surrogatepass (the same bytes for every other string, so the same hashes as scikit-learn's).
        hashes = np.fromiter(
            (mmh3.hash(gram.encode("utf-8", "surrogatepass"), 0, True) for gram in self._ngrams(text)), dtype=np.int64
        )
        # abs() on int64 is safe for -2**31, where scikit-learn special-cases int32 to the same result.
        indices, counts = np.unique(np.abs(hashes) % self.n_features, return_counts=True)
        values = (np.log(counts) + 1.0) * self.idf[indices]
        norm = np.sqrt(np.dot(values, values))
        return indices, values / norm if norm > 0 else values

    def __call__(self, texts: list[str]) -> np.ndarray:
        decision = np.empty((len(texts), self.intercept.shape[0]))
        for row, text in enumerate(texts):
            indices, values = self._features(text)
            decision[row] = values @ self.coef_t[indices] + self.intercept
        return 1.0 / (1.0 + np.exp(-decision))


def load(data: bytes, format: str = FORMAT) -> FnvHashScorer | MurmurHashScorer:
    """The scorer of an npz artifact of `format`; ValueError or KeyError if the arrays do not fit it."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        if format in (FORMAT_WORDS, FORMAT, FORMAT_V2):
            hasher = CharNgramHasher(
                tuple(int(n) for n in arrays["ngram_range"]), int(arrays["bits"]), bool(arrays["lowercase"])
            )
            if format == FORMAT_WORDS:
                return FnvHashScorer(
                    hasher, arrays["feature_rows"], arrays["intercept"], WordVectors.from_arrays(arrays, WORDS_PREFIX)
                )
            if format == FORMAT:
                return FnvHashScorer(hasher, arrays["feature_rows"], arrays["intercept"])
            # v2: float32 × float32 is exact in float64, the v2 pipeline's own products.
            idf = arrays["idf"].astype(np.float64)
            return FnvHashScorer(hasher, np.column_stack([arrays["coef"].T * idf[:, None], idf]), arrays["intercept"])
        if format == FORMAT_V1:
            return MurmurHashScorer(
                idf=arrays["idf"],
                coef=arrays["coef"],
                intercept=arrays["intercept"],
                ngram_range=tuple(int(n) for n in arrays["ngram_range"]),
                lowercase=bool(arrays["lowercase"]),
            )
    raise ValueError(f"unknown inference format {format!r}")
