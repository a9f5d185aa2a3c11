"""Decoding of the events functions receive. Pure: no I/O."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class PubSubMessage:
    id: str
    data: bytes
    publish_time: datetime
    attributes: dict[str, str] = field(default_factory=dict)


_FRACTION = re.compile(r"\.(\d+)")


def parse_rfc3339(value: str) -> datetime:
    """RFC 3339 as Pub/Sub writes it, nanoseconds included (Python keeps microseconds)."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def pubsub_message(cloud_event: Any) -> PubSubMessage:
    """A `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent as a plain message.

    The envelope is written by Pub/Sub (or functions-framework's conversion of a raw
    push), so a broken one is an infrastructure fault: it raises, and is retried until
    the subscription's dead-letter policy takes it.
    """
    message = cloud_event.data["message"]
    message_id = message.get("messageId") or message.get("message_id") or cloud_event["id"]
    publish_time = message.get("publishTime") or message.get("publish_time") or cloud_event["time"]
    return PubSubMessage(
        id=str(message_id),
        data=base64.b64decode(message.get("data") or b"", validate=True),
        publish_time=parse_rfc3339(publish_time),
        attributes=dict(message.get("attributes") or {}),
    )


@dataclass(frozen=True)
class ObjectEvent:
    """A finalized object, whichever way the notice came."""

    bucket: str
    name: str
    generation: int | None
    event_type: str = "OBJECT_FINALIZE"


STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def object_event(cloud_event: Any) -> ObjectEvent | None:
    """Normalise a storage event: an Eventarc `object.v1.finalized` CloudEvent, or a Pub/Sub
    messagePublished CloudEvent wrapping a GCS notification (JSON_API_V1; what the local stack and
    bucket Pub/Sub notifications produce). None when the event is not a storage notification.
    """
    if cloud_event["type"] == STORAGE_FINALIZED:
        data = cloud_event.data
        if isinstance(data, (bytes, str)):
            import json

            data = json.loads(data)
        return ObjectEvent(bucket=data["bucket"], name=data["name"], generation=_int_or_none(data.get("generation")))
    if cloud_event["type"] == PUBSUB_PUBLISHED:
        attributes = (cloud_event.data.get("message") or {}).get("attributes") or {}
        if "bucketId" in attributes and "objectId" in attributes:
            return ObjectEvent(
                bucket=attributes["bucketId"],
                name=attributes["objectId"],
                generation=_int_or_none(attributes.get("objectGeneration")),
                event_type=attributes.get("eventType", ""),
            )
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
