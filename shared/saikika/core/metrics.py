"""Metrics of thresholded labels, and the one threshold comparison every caller uses. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from saikika.core.items import Item


def above_thresholds(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Which labels each row carries: a score at or above its label's threshold. `scores` is one row or a
    (rows, labels) matrix. The only place the comparison is made (training, serving, reports, judging)."""
    return scores >= thresholds


def binarize(items: Sequence[Item], labels: Sequence[str]) -> np.ndarray:
    """The true labels as a (rows, labels) 0/1 matrix; labels outside `labels` are left out."""
    index = {label: j for j, label in enumerate(labels)}
    y = np.zeros((len(items), len(labels)), dtype=np.int8)
    for i, item in enumerate(items):
        for label in item.labels or ():
            if label in index:
                y[i, index[label]] = 1
    return y


def evaluate_scores(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> dict:
    """top1_accuracy, micro_f1, macro_f1 and per_label of the thresholded scores."""
    metrics = label_metrics(truth, above_thresholds(scores, thresholds), labels)
    return {"top1_accuracy": top1_accuracy(scores, truth), **metrics}


def label_metrics(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """Micro/macro F1 and per-label precision, recall, F1 and support of predicted labels."""
    truth = truth.astype(bool)
    predicted = predicted.astype(bool)
    tp = (truth & predicted).sum(axis=0)
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    per_label = {}
    f1s = []
    for j, label in enumerate(labels):
        precision = _ratio(tp[j], tp[j] + fp[j])
        recall = _ratio(tp[j], tp[j] + fn[j])
        f1 = _ratio(2 * tp[j], 2 * tp[j] + fp[j] + fn[j])
        support = int(truth[:, j].sum())
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support > 0:
            f1s.append(f1)
    return {
        "micro_f1": _ratio(tp.sum() * 2, tp.sum() * 2 + fp.sum() + fn.sum()),
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_label": per_label,
    }


def top1_accuracy(scores: np.ndarray, truth: np.ndarray) -> float:
    """Share of rows with at least one true label whose highest-scoring label is a true one."""
    has_label = truth.any(axis=1)
    if not has_label.any():
        return 0.0
    best = scores[has_label].argmax(axis=1)
    return float(truth[has_label][np.arange(len(best)), best].mean())


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0
