"""The inference-only artifact: the fitted pipeline's arithmetic as plain arrays, no scikit-learn.

`model.npz` (numpy's format, loaded with allow_pickle=False) holds the TF-IDF weights and the linear
models; the analyzer is re-implemented exactly (scikit-learn's character n-grams, MurmurHash3 via mmh3).
Training (`saikika.model.training`) exports it and proves it gives the pipeline's scores to within 1e-9
before writing it; the predictors then start without importing scikit-learn or skops, which is most of a
cold start.
"""

from __future__ import annotations

import io
import re

import mmh3
import numpy as np

FORMAT = "saikika-hashed-char-tfidf-ovr-logistic-v1"
MAX_SCORE_DIFFERENCE = 1e-9
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's VectorizerMixin._white_spaces


class LinearTextScorer:
    """Scores texts as HashingVectorizer(char) → TfidfTransformer(sublinear, l2) → one-vs-rest logistic."""

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
        hashes = np.fromiter((mmh3.hash(gram, 0, True) for gram in self._ngrams(text)), dtype=np.int64)
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


def load(data: bytes) -> LinearTextScorer:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return LinearTextScorer(
            idf=arrays["idf"], coef=arrays["coef"], intercept=arrays["intercept"],
            ngram_range=tuple(int(n) for n in arrays["ngram_range"]), lowercase=bool(arrays["lowercase"]),
        )
