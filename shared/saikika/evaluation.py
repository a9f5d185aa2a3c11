"""Scoring a loaded model against labeled rows."""

from __future__ import annotations

from collections.abc import Sequence

from saikika.items import Item
from saikika.model import LabelModel, binarize, evaluate_scores


def evaluate(model: LabelModel, items: Sequence[Item]) -> dict:
    """top1_accuracy, micro_f1, macro_f1 (of thresholded labels) and per_label, over the model's labels."""
    scores = model.scores([item.text() for item in items])
    truth = binarize(items, model.labels)
    result = evaluate_scores(scores, truth, model.thresholds, list(model.labels))
    unknown = sorted({label for item in items for label in (item.labels or ()) if label not in model.labels})
    return {**result, "rows": len(items), "labels_unknown_to_model": unknown}
