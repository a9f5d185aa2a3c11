"""Per-label decision thresholds, tuned on the tuning split. Pure numpy.

The rule (docs/thresholds.md has the numbers behind it), for each label:

1. the floor: the label's share of positives in the tuning split (a score under the base rate is evidence
   *against* the label), and never less than MIN_THRESHOLD, however rare the label;
2. the cut with the best F1 among the cuts between distinct tuning scores at or above the floor: a few
   mislabeled positives (the synthetic catalogue flips 2% of its labels on purpose; feedback will flip some too)
   score near nothing, and a best cut taken over all scores went down to them (`kids` at 0.0018), where any text
   unlike the training data scores as well;
3. the threshold halfway into the gap below that cut, not at its edge (a margin for unseen positives that score
   a little lower), and never below the floor.

So a score far below any positive example's never yields a label. Scores are not recalibrated: predictors serve
the model's own scores (the inference artifact holds the logistic weights), and the thresholds adapt to them.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5
# No label is given below this score, however rare the label is in the tuning split.
MIN_THRESHOLD = 0.05


def tune_thresholds(scores: np.ndarray, truth: np.ndarray, *, min_threshold: float = MIN_THRESHOLD) -> np.ndarray:
    """For each label, a score cut-off from held-out rows (the rule in this module's docstring).
    `min_threshold=0` gives the rule before the floor: the best-F1 cut over all scores.

    A label without positives (or without any rows) keeps DEFAULT_THRESHOLD: there is nothing to tune it on.
    """
    n_labels = scores.shape[1]
    out = np.full(n_labels, DEFAULT_THRESHOLD)
    for j in range(n_labels):
        positives = int(truth[:, j].sum())
        if positives == 0:
            continue
        floor = max(min_threshold, positives / len(truth)) if min_threshold > 0 else 0.0
        out[j] = max(floor, _best_cut_in_its_gap(scores[:, j], truth[:, j], positives, floor))
    return out


def _best_cut_in_its_gap(scores: np.ndarray, truth: np.ndarray, positives: int, floor: float) -> float:
    """Halfway between the lowest score the best-F1 cut at or above `floor` keeps and the next lower score (or 0);
    `floor` itself when no score reaches it."""
    order = np.argsort(-scores, kind="stable")
    ranked_scores = scores[order]
    tp = np.cumsum(truth[order])
    predicted = np.arange(1, len(ranked_scores) + 1)
    f1 = 2 * tp / (predicted + positives)
    # Only cut where the score changes (equal scores cannot be separated by a threshold), and not below the floor.
    last_of_run = np.r_[ranked_scores[1:] != ranked_scores[:-1], True]
    f1 = np.where(last_of_run & (ranked_scores >= floor), f1, -1.0)
    if f1.max() < 0:
        return floor
    best = int(np.argmax(f1))
    lower = ranked_scores[best + 1] if best + 1 < len(ranked_scores) else 0.0
    return float((ranked_scores[best] + lower) / 2)
