"""The record kept for input that cannot be used: nothing is dropped without a trace. Pure;
`saikika.cloud.rejected_store` writes it.

There is no age rule: a message is handled whatever its age, so a backlog loses nothing, and one that keeps
failing is left to its subscription's dead-letter policy (kept in the `*-dead-letter-keep` subscriptions)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from saikika.core.events import PubSubMessage
from saikika.core.items import Problem


def rejected_record(message: PubSubMessage, problems: list[Problem], source: str) -> dict[str, Any]:
    try:
        data, encoding = message.data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        data, encoding = base64.b64encode(message.data).decode("ascii"), "base64"
    return {
        "message_id": message.id,
        "source": source,
        "publish_time": message.publish_time.isoformat(),
        "rejected_at": datetime.now(UTC).isoformat(),
        "attributes": message.attributes,
        "data_encoding": encoding,
        "data": data,
        "errors": [problem.to_json() for problem in problems],
    }
