"""Per-label decision thresholds, tuned on the tuning split. Pure numpy."""

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
