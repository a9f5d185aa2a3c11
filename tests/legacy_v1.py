"""A model version in the previous inference format (v1: scikit-learn's HashingVectorizer, MurmurHash3, float64
weights), built the way saikika built them before the vectorised featuriser, so tests can show such versions
still load and serve."""

from __future__ import annotations

import io

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline

from saikika.core.metrics import binarize
from saikika.model import artifact, inference_artifact, pipeline_file
from saikika.model.artifact import ModelFiles


def build(items, labels: list[str]) -> tuple[ModelFiles, Pipeline]:
    hashing = HashingVectorizer(analyzer="char", ngram_range=(1, 3), n_features=2**18, alternate_sign=False, norm=None)
    texts = [item.text() for item in items]
    counts = hashing.transform(texts)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    classifier = OneVsRestClassifier(SGDClassifier(loss="log_loss", alpha=2e-6, max_iter=50, tol=1e-4, random_state=0))
    classifier.fit(tfidf.transform(counts), binarize(items, labels))
    pipeline = Pipeline([("hash", hashing), ("tfidf", tfidf), ("classify", classifier)])
    buffer = io.BytesIO()
    np.savez(
        buffer,
        idf=tfidf.idf_.astype(np.float64),
        coef=np.vstack([e.coef_ for e in classifier.estimators_]).astype(np.float64),
        intercept=np.concatenate([e.intercept_ for e in classifier.estimators_]).astype(np.float64),
        ngram_range=np.asarray((1, 3), dtype=np.int64),
        lowercase=np.asarray(True),
    )
    return model_files(pipeline, buffer.getvalue(), labels, inference_artifact.FORMAT_V1), pipeline


def model_files(pipeline: Pipeline, arrays: bytes, labels: list[str], inference_format: str) -> ModelFiles:
    """A version's files around a pipeline and its inference arrays of an earlier format (thresholds 0.5)."""
    model = pipeline_file.dump(pipeline)
    digest = artifact.sha256_hex(model)
    metadata = {
        "version": artifact.new_version_id(digest),
        "sha256": digest,
        "labels": labels,
        "thresholds": {label: 0.5 for label in labels},
        "inference": {"file": "model.npz", "format": inference_format, "sha256": artifact.sha256_hex(arrays)},
    }
    return ModelFiles(model, metadata, arrays)
