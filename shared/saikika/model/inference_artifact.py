"""The inference-only artifact, `model.npz`: the fitted pipeline's arithmetic as plain arrays, no scikit-learn.

numpy's format, loaded with `allow_pickle=False`. Two formats:
- `FORMAT` (v2, written now): the featuriser's hashed character n-gram counts (`saikika.model.featuriser`,
  the very code training uses), sublinear TF-IDF and one logistic model per label, with the IDF weights and
  coefficients stored as float32 and the arithmetic done in float64; scored for the whole batch at once.
  The pipeline holds the same float32-rounded weights, so the two agree to rounding: training proves the
  arrays give the pipeline's scores to within `MAX_SCORE_DIFFERENCE` before writing them.
- `FORMAT_V1` (read only, for versions trained before): scikit-learn's HashingVectorizer re-implemented
  with MurmurHash3 (`mmh3`), float64 weights, one text at a time; equal to its pipeline to 1e-9.

The predictors start without importing scikit-learn or skops, which is most of a cold start.
"""

from __future__ import annotations

import io
import re

import mmh3
import numpy as np

from saikika.model.featuriser import CharNgramHasher

FORMAT = "saikika-char-ngram-fnv1-tfidf-ovr-logistic-v2"
FORMAT_V1 = "saikika-hashed-char-tfidf-ovr-logistic-v1"
FORMATS = (FORMAT, FORMAT_V1)
# The largest difference between the pipeline's probabilities and the artifact's (either format).
MAX_SCORE_DIFFERENCE = 1e-9
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's VectorizerMixin._white_spaces


class FnvHashScorer:
    """Format v2: featuriser counts → sublinear TF-IDF (l2) → one-vs-rest logistic, for a batch at once."""

    def __init__(self, hasher: CharNgramHasher, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
        if idf.shape != (hasher.n_features,) or coef.ndim != 2 or coef.shape[1] != hasher.n_features:
            raise ValueError(f"arrays do not fit 2^{hasher.bits} features: idf {idf.shape}, coef {coef.shape}")
        if intercept.shape != (coef.shape[0],):
            raise ValueError(f"{coef.shape[0]} coefficient rows but {intercept.shape} intercepts")
        self.hasher = hasher
        self.idf = np.asarray(idf, dtype=np.float32)
        self.coef = np.ascontiguousarray(coef, dtype=np.float32)  # (labels, features): one contiguous row a label
        self.intercept = np.asarray(intercept, dtype=np.float64)

    def __call__(self, texts: list[str]) -> np.ndarray:
        counts = self.hasher(texts)
        decision = np.tile(self.intercept, (len(texts), 1))
        # reduceat sums from one start to the next, so only texts with at least one n-gram take part (an
        # empty text's TF-IDF row is all zeros: its decision is the intercept, as in scikit-learn).
        filled = np.flatnonzero(np.diff(counts.indptr))
        if filled.shape[0]:
            starts = counts.indptr[filled]
            tfidf = (np.log(counts.counts) + 1.0) * self.idf.take(counts.indices)  # float64 from here on
            tfidf /= np.repeat(np.sqrt(np.add.reduceat(tfidf * tfidf, starts)), np.diff(counts.indptr)[filled])
            # One 1-D gather per label from its contiguous row: faster than gathering (non-zeros × labels)
            # blocks, and no temporary grows with the label count.
            for label, row in enumerate(self.coef):
                decision[filled, label] += np.add.reduceat(row.take(counts.indices) * tfidf, starts)
        return 1.0 / (1.0 + np.exp(-decision))


class MurmurHashScorer:
    """Format v1 (models trained before the vectorised featuriser): scikit-learn's HashingVectorizer(char,
    MurmurHash3) → TfidfTransformer(sublinear, l2) → one-vs-rest logistic, re-implemented one text at a time."""

    def __init__(self, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray, ngram_range: tuple[int, int],
                 lowercase: bool):
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
            grams.extend(text[i:i + n] for i in range(length - n + 1))
        return grams

    def _features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # mmh3 hashes a str as its UTF-8 bytes but crashes the process on a lone surrogate: encode here, with
        # surrogatepass (the same bytes for every other string, so the same hashes as scikit-learn's).
        hashes = np.fromiter((mmh3.hash(gram.encode("utf-8", "surrogatepass"), 0, True)
                              for gram in self._ngrams(text)), dtype=np.int64)
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
        if format == FORMAT:
            hasher = CharNgramHasher(tuple(int(n) for n in arrays["ngram_range"]), int(arrays["bits"]),
                                     bool(arrays["lowercase"]))
            return FnvHashScorer(hasher, arrays["idf"], arrays["coef"], arrays["intercept"])
        if format == FORMAT_V1:
            return MurmurHashScorer(
                idf=arrays["idf"], coef=arrays["coef"], intercept=arrays["intercept"],
                ngram_range=tuple(int(n) for n in arrays["ngram_range"]), lowercase=bool(arrays["lowercase"]),
            )
    raise ValueError(f"unknown inference format {format!r}")
