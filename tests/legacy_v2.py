"""A model version in inference format v2 (the vectorised featuriser with float32 `coef` and `idf`, scored in float64),
written the way saikika wrote them before the weights were stored multiplied by the IDF, so tests can show such
versions still load and serve."""

from __future__ import annotations

import copy
import io

import numpy as np
from sklearn.pipeline import Pipeline

from saikika.model import inference_artifact
from saikika.model.artifact import ModelFiles
from tests import legacy_v1


def build(pipeline: Pipeline, labels: list[str]) -> tuple[ModelFiles, Pipeline]:
    """The v2 files of a fitted saikika pipeline, and the pipeline they reproduce (its IDF and coefficients
    rounded to float32 one by one, as v2 training did)."""
    pipeline = copy.deepcopy(pipeline)
    featuriser, tfidf, classifier = (pipeline.named_steps[k] for k in ("hash", "tfidf", "classify"))
    tfidf.idf_ = tfidf.idf_.astype(np.float32).astype(np.float64)
    for estimator in classifier.estimators_:
        estimator.coef_ = estimator.coef_.astype(np.float32).astype(np.float64)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        idf=tfidf.idf_.astype(np.float32),
        coef=np.vstack([e.coef_ for e in classifier.estimators_]).astype(np.float32),
        intercept=np.concatenate([e.intercept_ for e in classifier.estimators_]).astype(np.float64),
        ngram_range=np.asarray(featuriser.ngram_range, dtype=np.int64),
        bits=np.asarray(featuriser.bits, dtype=np.int64),
        lowercase=np.asarray(True),
    )
    return legacy_v1.model_files(pipeline, buffer.getvalue(), labels, inference_artifact.FORMAT_V2), pipeline
