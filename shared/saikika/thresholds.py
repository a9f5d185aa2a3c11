"""Per-label decision thresholds and the metrics of thresholded labels. Pure numpy."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5


def tune_thresholds(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each label, the score cut-off that maximises F1 on held-out rows.

    A label without positives (or without any rows) keeps DEFAULT_THRESHOLD: there is
    nothing to tune it on.
    """
    n_labels = scores.shape[1]
    out = np.full(n_labels, DEFAULT_THRESHOLD)
    for j in range(n_labels):
        positives = int(truth[:, j].sum())
        if positives == 0:
            continue
        order = np.argsort(-scores[:, j], kind="stable")
        ranked_scores = scores[order, j]
        ranked_truth = truth[order, j]
        tp = np.cumsum(ranked_truth)
        predicted = np.arange(1, len(ranked_truth) + 1)
        f1 = 2 * tp / (predicted + positives)
        # Only cut where the score changes: equal scores cannot be separated by a threshold.
        last_of_run = np.r_[ranked_scores[1:] != ranked_scores[:-1], True]
        f1 = np.where(last_of_run, f1, -1.0)
        best = int(np.argmax(f1))
        # Cut halfway to the next lower score, not at the last positive's score itself: a
        # margin for unseen items that score a little lower.
        lower = ranked_scores[best + 1] if best + 1 < len(ranked_scores) else 0.0
        out[j] = float((ranked_scores[best] + lower) / 2)
    return out


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return scores >= thresholds[np.newaxis, :]


def label_metrics(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """top-1 accuracy (argmax among rows with a true label), micro/macro F1 and per-label figures."""
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
