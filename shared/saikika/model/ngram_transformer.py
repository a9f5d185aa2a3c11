"""The featuriser as a scikit-learn transformer, for training: texts in, CSR counts out.

It lives in a module of its own because a saved pipeline (`model.skops`) holds it: `pipeline_file` imports it
and names it in its trusted types, so every function that loads a pipeline ships it in its zip.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from saikika.model.featuriser import CharNgramHasher


class HashedCharNgrams(TransformerMixin, BaseEstimator):
    """`saikika.model.featuriser.CharNgramHasher` as a stateless scikit-learn transformer: texts → CSR counts."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), bits: int = 18, lowercase: bool = True):
        self.ngram_range = ngram_range
        self.bits = bits
        self.lowercase = lowercase

    def fit(self, texts, y=None):  # noqa: ARG002  (stateless: nothing to learn)
        return self

    def hasher(self) -> CharNgramHasher:
        return CharNgramHasher(self.ngram_range, self.bits, self.lowercase)

    def transform(self, texts) -> sp.csr_matrix:
        counts = self.hasher()(list(texts))
        return sp.csr_matrix((counts.counts.astype(np.float64), counts.indices, counts.indptr),
                             shape=(len(counts.indptr) - 1, 1 << self.bits))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
