"""Live quality, test-then-train: how the champion does on the feedback it has never trained on. Pure numpy.

Before a retrain run trains on new feedback, it scores the champion on the feedback rows whose event time is newer
than the champion's newest training row (labels users confirmed or corrected, which it could not have seen), and
keeps the figures as one `LiveQuality` object (`monitoring/quality/…`, `saikika.core.objects.live_quality`). The
figures are `saikika.core.metrics.label_metrics` over every label either side names (a label the champion does not
know counts as never predicted), and the share of rows whose predicted label set is exactly the confirmed one.

Degraded (`DegradedRule`, the one rule): at least SAIKIKA_LIVE_QUALITY_MIN_ROWS rows, and a live micro F1 below
SAIKIKA_LIVE_F1_FLOOR or more than SAIKIKA_LIVE_F1_MARGIN below the champion's offline micro F1; `why` says which
and names the worst label (the lowest F1 among labels with support).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from saikika.core.metrics import label_metrics


@dataclass(frozen=True)
class LiveQuality:
    """One run's live quality of one champion version (the contract's shape, `to_json`/`from_json`)."""

    champion_version: str
    computed_at: str
    run_started: str
    rows: int
    first_event_time: str | None
    last_event_time: str | None
    trained_until: str | None  # the champion's newest training row
    micro_f1: float
    macro_f1: float
    exact_match: float
    per_label: Mapping[str, Mapping[str, float]]  # label → precision, recall, f1, support
    offline_micro_f1: float | None  # metadata.json's metrics.micro_f1
    degraded: bool
    why: str | None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_label"] = {label: dict(figures) for label, figures in self.per_label.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LiveQuality:
        """Keys a later release may add are left out, so older readers keep reading newer objects."""
        known = {key: value for key, value in data.items() if key in _FIELDS}
        return cls(**{**known, "per_label": {label: dict(f) for label, f in data["per_label"].items()}})

    @property
    def worst(self) -> tuple[str, float] | None:
        return worst_label(self.per_label)

    def log_fields(self) -> dict[str, Any]:
        """The `live quality` log line's fields: every key but `per_label`, plus the worst label and its F1."""
        fields = {key: value for key, value in self.to_json().items() if key != "per_label"}
        worst = self.worst
        return {**fields, "worst_label": worst[0] if worst else None, "worst_label_f1": worst[1] if worst else None}


_FIELDS = frozenset(field.name for field in fields(LiveQuality))


@dataclass(frozen=True)
class DegradedRule:
    """When live quality is degraded (SAIKIKA_LIVE_QUALITY_MIN_ROWS, SAIKIKA_LIVE_F1_FLOOR, SAIKIKA_LIVE_F1_MARGIN)."""

    min_rows: int
    floor: float
    margin: float

    def why(
        self, rows: int, micro_f1: float, offline_micro_f1: float | None, worst: tuple[str, float] | None
    ) -> str | None:
        """Why live quality is degraded, or None when it is not (too few rows is never degraded)."""
        if rows < self.min_rows:
            return None
        reasons = []
        if micro_f1 < self.floor:
            reasons.append(f"live micro F1 {micro_f1:.4f} is below the floor {self.floor:g} (SAIKIKA_LIVE_F1_FLOOR)")
        if offline_micro_f1 is not None and micro_f1 < offline_micro_f1 - self.margin:
            reasons.append(
                f"live micro F1 {micro_f1:.4f} is {offline_micro_f1 - micro_f1:.4f} below the champion's offline "
                f"{offline_micro_f1:.4f} (SAIKIKA_LIVE_F1_MARGIN {self.margin:g})"
            )
        if not reasons:
            return None
        named = f"worst label {worst[0]} (F1 {worst[1]:.4f})" if worst else "no label has support"
        return f"{'; '.join(reasons)}; {named}, on {rows} feedback rows"


@dataclass(frozen=True)
class Window:
    """Where the scored rows sit in time (ISO-8601), and what the champion is (offline F1, newest training row)."""

    champion_version: str
    run_started: str
    computed_at: str
    first_event_time: str | None
    last_event_time: str | None
    trained_until: str | None
    offline_micro_f1: float | None


def exact_match(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Share of rows whose predicted label set equals the confirmed one (0 rows: 0.0)."""
    if len(truth) == 0:
        return 0.0
    return float((truth.astype(bool) == predicted.astype(bool)).all(axis=1).mean())


def worst_label(per_label: Mapping[str, Mapping[str, float]]) -> tuple[str, float] | None:
    """(label, F1) of the lowest F1 among labels with support (ties: the first by name); None when none has any."""
    supported = [(figures["f1"], label) for label, figures in per_label.items() if figures["support"] > 0]
    if not supported:
        return None
    f1, label = min(supported)
    return label, f1


def label_matrices(
    truth: Sequence[Collection[str]], predicted: Sequence[Collection[str]]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(truth, predicted, labels): 0/1 matrices of rows × every label either side names, sorted."""
    labels = sorted({label for row in (*truth, *predicted) for label in row})
    index = {label: j for j, label in enumerate(labels)}

    def matrix(rows: Sequence[Collection[str]]) -> np.ndarray:
        out = np.zeros((len(rows), len(labels)), dtype=np.int8)
        for i, row in enumerate(rows):
            out[i, [index[label] for label in row]] = 1
        return out

    return matrix(truth), matrix(predicted), labels


def measure(
    truth: np.ndarray, predicted: np.ndarray, labels: list[str], window: Window, rule: DegradedRule
) -> LiveQuality:
    """The live quality of `predicted` (the champion's labels) against `truth` (the confirmed ones)."""
    metrics = label_metrics(truth, predicted, labels)
    rows = len(truth)
    why = rule.why(rows, metrics["micro_f1"], window.offline_micro_f1, worst_label(metrics["per_label"]))
    return LiveQuality(
        champion_version=window.champion_version,
        computed_at=window.computed_at,
        run_started=window.run_started,
        rows=rows,
        first_event_time=window.first_event_time,
        last_event_time=window.last_event_time,
        trained_until=window.trained_until,
        micro_f1=metrics["micro_f1"],
        macro_f1=metrics["macro_f1"],
        exact_match=exact_match(truth, predicted),
        per_label=metrics["per_label"],
        offline_micro_f1=window.offline_micro_f1,
        degraded=why is not None,
        why=why,
    )
