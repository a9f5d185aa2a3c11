"""The featurisers as scikit-learn transformers, for training: texts in, CSR counts (n-grams) or dense rows (title
word vectors) out.

They live in a module of their own because a saved pipeline (`model.skops`) holds them: `pipeline_file` imports
it and names them in its trusted types, so every function that loads a pipeline ships it in its zip.
"""

from __future__ import annotations

import weakref

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from saikika.model.featuriser import CharNgramHasher
from saikika.model.word_vectors import WordVectors


class _StatelessTextTransformer(TransformerMixin, BaseEstimator):
    """Texts in, nothing to learn: `fit` is a no-op and scikit-learn is told so."""

    def fit(self, texts, y=None):  # noqa: ARG002  (stateless: nothing to learn)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags


class HashedCharNgrams(_StatelessTextTransformer):
    """`saikika.model.featuriser.CharNgramHasher` as a stateless scikit-learn transformer: texts → CSR counts."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), bits: int = 18, lowercase: bool = True):
        self.ngram_range = ngram_range
        self.bits = bits
        self.lowercase = lowercase

    def hasher(self) -> CharNgramHasher:
        return CharNgramHasher(self.ngram_range, self.bits, self.lowercase)

    def transform(self, texts) -> sp.csr_matrix:
        counts = self.hasher()(list(texts))
        return sp.csr_matrix(
            (counts.counts.astype(np.float64), counts.indices, counts.indptr),
            shape=(len(counts.indptr) - 1, 1 << self.bits),
        )


# Each transformer's WordVectors (its lookup filter is built once), kept beside it rather than in its attributes,
# which a saved pipeline stores and skops would have to trust.
_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class TitleWordVectors(_StatelessTextTransformer):
    """`saikika.model.word_vectors.WordVectors` as a stateless transformer: texts → (texts, dimensions) dense rows,
    `weight` × the mean word vector of each text's first line. The vocabulary's arrays are its parameters."""

    def __init__(self, hashes=None, rows=None, vectors=None, max_length: int = 1, weight: float = 1.0):
        self.hashes = hashes
        self.rows = rows
        self.vectors = vectors
        self.max_length = max_length
        self.weight = weight

    @classmethod
    def of(cls, vectors: WordVectors) -> TitleWordVectors:
        transformer = cls(vectors.hashes, vectors.rows, vectors.vectors, vectors.max_length, vectors.weight)
        _BUILT[transformer] = vectors  # already built and checked: not again for every fit
        return transformer

    def word_vectors(self) -> WordVectors:
        built = _BUILT.get(self)
        if built is None:
            built = _BUILT[self] = WordVectors(self.hashes, self.rows, self.vectors, self.max_length, self.weight)
        return built

    def transform(self, texts) -> np.ndarray:
        return self.word_vectors().features(list(texts))
