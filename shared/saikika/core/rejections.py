"""The record kept for input that cannot be used, and the age rule: nothing is dropped without a trace.
Pure; `saikika.cloud.rejected_store` writes the record."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from saikika.core.events import PubSubMessage
from saikika.core.items import ParsedMessage, Problem, parse_message


def rejected_record(message: PubSubMessage, problems: list[Problem], source: str) -> dict[str, Any]:
    try:
        data, encoding = message.data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        data, encoding = base64.b64encode(message.data).decode("ascii"), "base64"
    return {
        "message_id": message.id,
        "source": source,
        "publish_time": message.publish_time.isoformat(),
        "rejected_at": datetime.now(timezone.utc).isoformat(),
        "attributes": message.attributes,
        "data_encoding": encoding,
        "data": data,
        "errors": [problem.to_json() for problem in problems],
    }


def parse_unless_expired(message: PubSubMessage, now: datetime, max_age_s: float, *, labeled: bool) -> ParsedMessage:
    """Parse the message, or turn it into one problem if it is too old to be worth retrying."""
    age_s = (now - message.publish_time).total_seconds()
    if age_s > max_age_s:
        return ParsedMessage(problems=[Problem(
            f"event is {age_s:.0f} s old, older than SAIKIKA_MAX_EVENT_AGE_S={max_age_s:.0f}; "
            "stored instead of retried again"
        )])
    return parse_message(message.data, labeled=labeled)
