"""Scoring a loaded model against labeled rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from saikika.core.items import Item
from saikika.core.metrics import binarize, evaluate_scores
from saikika.model.label_model import LabelModel


def evaluate(model: LabelModel, items: Sequence[Item], labels: Sequence[str] | None = None) -> dict:
    """top1_accuracy, micro_f1, macro_f1 (of thresholded labels) and per_label.

    Over the model's own labels by default. With `labels` (say, the union of two models' label
    sets), a label the model does not know counts as never predicted: comparing a model that
    learned a new label with one that did not then credits the one that did.
    """
    labels = list(model.labels if labels is None else labels)
    own = model.scores([item.text() for item in items])
    column = {label: j for j, label in enumerate(model.labels)}
    scores = np.zeros((len(items), len(labels)))
    thresholds = np.full(len(labels), np.inf)
    for j, label in enumerate(labels):
        if label in column:
            scores[:, j] = own[:, column[label]]
            thresholds[j] = model.thresholds[column[label]]
    result = evaluate_scores(scores, binarize(items, labels), thresholds, labels)
    unknown = sorted({label for item in items for label in (item.labels or ()) if label not in model.labels})
    return {**result, "rows": len(items), "labels_unknown_to_model": unknown}
