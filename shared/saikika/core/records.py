"""The prediction record: one line per item, the same shape on every path (event, batch function, Beam).

`id`, `labels`, `scores`, `model_version`, `predicted_at`, plus what traces the line back to its cause: the
Pub/Sub `message_id` for the event path, the `run_id` for batch runs. The BigQuery tables read these names.
"""

from __future__ import annotations

from typing import Any

FIELDS = ("id", "labels", "scores", "model_version", "predicted_at")


def prediction(
    item_id: str, labels: list[str], scores: dict[str, float], model_version: str, predicted_at: str, **trace: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "labels": labels,
        "scores": scores,
        "model_version": model_version,
        "predicted_at": predicted_at,
        **trace,
    }
