"""A loaded model version as predictors see it: labels, thresholds and a scorer. numpy only, so the
serving path does not import scikit-learn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from saikika.core.items import Item
from saikika.core.metrics import above_thresholds

Scorer = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    scores: dict[str, float]


@dataclass(frozen=True)
class LabelModel:
    """An immutable model version: safe to share between request threads."""

    version: str
    labels: tuple[str, ...]
    thresholds: np.ndarray
    scorer: Scorer
    # "inference" (plain arrays, no scikit-learn) or "skops" (the full pipeline).
    backend: str = "skops"

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.scorer(list(texts)), dtype=float)

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        if not items:
            return []
        scores = self.scores([item.text() for item in items])
        # Whole-batch array operations, then plain Python values: per item only list and dict building.
        carried = above_thresholds(scores, self.thresholds).tolist()
        ranked = np.argsort(-scores, axis=1, kind="stable").tolist()
        return [
            Prediction(
                labels=[self.labels[j] for j in order if passing[j]],
                scores={label: round(score, 6) for label, score in zip(self.labels, row)},
            )
            for order, passing, row in zip(ranked, carried, scores.tolist())
        ]
