"""Object names: where each kind of result lands, keyed by message id and publish date."""

from __future__ import annotations

import re
from datetime import datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(message_id: str) -> str:
    # Pub/Sub ids are digits; anything else is made safe for an object name, not trusted.
    return _UNSAFE.sub("_", message_id)[:200] or "_"


def _dated(prefix: str, published: datetime, message_id: str, suffix: str) -> str:
    return f"{prefix}/dt={published:%Y-%m-%d}/{_safe(message_id)}{suffix}"


def predictions(published: datetime, message_id: str) -> str:
    return _dated("predictions", published, message_id, ".jsonl")


def rejected(published: datetime, message_id: str, source: str = "items") -> str:
    # Items keep the documented `rejected/dt=...` path; other sources get a folder of their own,
    # since message ids are only unique within a topic.
    prefix = "rejected" if source == "items" else f"rejected/{source}"
    return _dated(prefix, published, message_id, ".json")


def feedback(published: datetime, message_id: str) -> str:
    return _dated("training/feedback", published, message_id, ".jsonl")
