"""The text model: training, scoring and thresholded labels.

Character n-grams need no word segmenter, so Japanese and English text work alike.
A HashingVectorizer keeps no vocabulary: the saved model loads in tens of
milliseconds, where a TF-IDF vocabulary of this size takes over a second with skops.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline

from saikika.items import Item
from saikika.prediction import LabelModel, Prediction  # noqa: F401  (re-exported for callers)
from saikika.thresholds import label_metrics, top1_accuracy, tune_thresholds

NGRAM_RANGE = (1, 3)
N_FEATURES = 2**18
ALPHA = 2e-6
MIN_LABEL_EXAMPLES = 3
HOLDOUT_FRACTION = 0.15
SEED = 0
_HASH_CHUNK = 500
# Above this many rows, featurising and the per-label fits use every core (2 here); below it, starting worker
# processes costs more than it saves.
PARALLEL_FROM_ROWS = 5_000
_PARALLEL_CHUNK = 2_500

Progress = Callable[[str, int, int], None]


class TrainingDataError(ValueError):
    """The rows cannot train a model (too few rows or labels); the message says why."""


def _vectorizer() -> HashingVectorizer:
    return HashingVectorizer(
        analyzer="char", ngram_range=NGRAM_RANGE, n_features=N_FEATURES, alternate_sign=False, norm=None
    )


def _jobs(rows: int) -> int | None:
    return (os.cpu_count() or 1) if rows >= PARALLEL_FROM_ROWS else None


def _classifier(rows: int) -> OneVsRestClassifier:
    # One independent binary model per label: fitting them in parallel changes nothing in the result.
    return OneVsRestClassifier(
        SGDClassifier(loss="log_loss", alpha=ALPHA, max_iter=50, tol=1e-4, random_state=SEED), n_jobs=_jobs(rows)
    )


def in_holdout(item_id: str, fraction: float = HOLDOUT_FRACTION) -> bool:
    """A stable split by id: the same item is held out in every run, whatever else changes."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass
class TrainedModel:
    pipeline: Pipeline
    labels: list[str]
    thresholds: np.ndarray
    metrics: dict
    rows_used: int
    holdout_rows: int
    labels_dropped: dict[str, str] = field(default_factory=dict)
    # Held-out scores and truth behind `metrics`, for reports; not saved with the model.
    holdout_scores: np.ndarray | None = None
    holdout_truth: np.ndarray | None = None
    # Texts on which an exported inference artifact must reproduce the pipeline's scores.
    check_texts: list[str] = field(default_factory=list)


def binarize(items: Sequence[Item], labels: Sequence[str]) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    y = np.zeros((len(items), len(labels)), dtype=np.int8)
    for i, item in enumerate(items):
        for label in item.labels or ():
            if label in index:
                y[i, index[label]] = 1
    return y


def _hash(texts: list[str], progress: Progress | None) -> sp.csr_matrix:
    """Hashed n-gram counts. The vectorizer is stateless, so chunks can be featurised in parallel."""
    vectorizer = _vectorizer()
    jobs = _jobs(len(texts))
    chunk = _PARALLEL_CHUNK if jobs else _HASH_CHUNK
    chunks = [texts[start : start + chunk] for start in range(0, len(texts), chunk)]
    if jobs:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs, return_as="generator")(delayed(vectorizer.transform)(c) for c in chunks)
    else:
        results = (vectorizer.transform(c) for c in chunks)
    parts = []
    for part in results:
        parts.append(part)
        if progress:
            progress("featurise", sum(p.shape[0] for p in parts), len(texts))
    return sp.vstack(parts).tocsr()


def _fit(counts: sp.csr_matrix, y: np.ndarray) -> tuple[TfidfTransformer, OneVsRestClassifier]:
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    with warnings.catch_warnings():
        # A label absent from one split's positives gets a constant predictor; that is expected.
        warnings.simplefilter("ignore", UserWarning)
        classifier = _classifier(counts.shape[0]).fit(tfidf.transform(counts), y)
    return tfidf, classifier


def train(items: Sequence[Item], progress: Progress | None = None) -> TrainedModel:
    """Fit on a stable split, tune thresholds and measure on the held-out part, then refit on all rows."""
    counts = Counter(label for item in items for label in (item.labels or ()))
    labels = sorted(label for label, n in counts.items() if n >= MIN_LABEL_EXAMPLES)
    dropped = {
        label: f"{n} example(s), fewer than {MIN_LABEL_EXAMPLES}"
        for label, n in sorted(counts.items())
        if n < MIN_LABEL_EXAMPLES
    }
    if len(labels) < 2:
        raise TrainingDataError(
            f"need at least 2 labels with {MIN_LABEL_EXAMPLES}+ examples each, found {len(labels)} "
            f"among {len(items)} rows"
        )
    y = binarize(items, labels)
    held = np.array([in_holdout(item.id) for item in items])
    if held.all() or not held.any():
        raise TrainingDataError(f"{len(items)} rows are too few to hold some out for thresholds and metrics")

    matrix = _hash([item.text() for item in items], progress)
    if progress:
        progress("fit", 0, 2)
    tfidf, classifier = _fit(matrix[~held], y[~held])
    holdout_scores = classifier.predict_proba(tfidf.transform(matrix[held]))
    thresholds = tune_thresholds(holdout_scores, y[held])
    metrics = evaluate_scores(holdout_scores, y[held], thresholds, labels)
    if progress:
        progress("fit", 1, 2)
    tfidf, classifier = _fit(matrix, y)
    if progress:
        progress("fit", 2, 2)
    pipeline = Pipeline([("hash", _vectorizer()), ("tfidf", tfidf), ("classify", classifier)])
    return TrainedModel(
        pipeline=pipeline,
        labels=labels,
        thresholds=thresholds,
        metrics=metrics,
        rows_used=len(items),
        holdout_rows=int(held.sum()),
        labels_dropped=dropped,
        holdout_scores=holdout_scores,
        holdout_truth=y[held],
        check_texts=[item.text() for item, h in zip(items, held) if h][:500],
    )


def evaluate_scores(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> dict:
    metrics = label_metrics(truth, scores >= thresholds[np.newaxis, :], labels)
    return {"top1_accuracy": top1_accuracy(scores, truth), **metrics}
