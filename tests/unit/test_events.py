import base64
from datetime import UTC, datetime

import pytest
from cloudevents.http import CloudEvent

from saikika.core import objects
from saikika.core.events import parse_rfc3339, pubsub_message


def _event(payload: bytes, **message):
    return CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/p/topics/items",
            "id": "evt-1",
            "time": "2026-11-29T10:00:00Z",
        },
        {
            "message": {
                "data": base64.b64encode(payload).decode(),
                "messageId": "123",
                "publishTime": "2026-11-29T23:59:59.123456789Z",
                "attributes": {"k": "v"},
                **message,
            },
            "subscription": "projects/p/subscriptions/s",
        },
    )


def test_decodes_pubsub_cloud_event():
    message = pubsub_message(_event(b'{"id": "a"}'))
    assert message.id == "123"
    assert message.data == b'{"id": "a"}'
    assert message.attributes == {"k": "v"}
    assert message.publish_time == datetime(2026, 11, 29, 23, 59, 59, 123456, tzinfo=UTC)


def test_falls_back_to_event_id_and_time():
    event = _event(b"x", messageId=None, publishTime=None)
    message = pubsub_message(event)
    assert message.id == "evt-1"
    assert message.publish_time == datetime(2026, 11, 29, 10, tzinfo=UTC)


def test_broken_envelope_raises():
    with pytest.raises(ValueError):
        pubsub_message(_event(b"x", data="%%%not base64%%%"))


@pytest.mark.parametrize("text", ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.1Z", "2026-01-02T12:04:05+09:00"])
def test_rfc3339_variants(text):
    parsed = parse_rfc3339(text)
    assert parsed.tzinfo == UTC
    assert (parsed.year, parsed.month, parsed.day) == (2026, 1, 2)


def test_paths_use_utc_date_and_safe_ids():
    published = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    assert objects.predictions(published, "42") == "predictions/dt=2026-11-29/42.jsonl"
    assert objects.rejected(published, "../x") == "rejected/dt=2026-11-29/.._x.json"
