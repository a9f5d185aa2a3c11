"""Feedback (confirmed labels) in, training data out: `training/feedback/dt=.../<message_id>.jsonl`.

Unknown labels are welcome: new labels are how the label set grows.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from saikika.cloud import gcs, rejected_store
from saikika.core import jsonl, logs, objects, rows
from saikika.core.events import PubSubMessage
from saikika.core.items import Item, parse_message
from saikika.core.settings import Settings

log = logging.getLogger("saikika.feedback")


class FeedbackRecorder:
    def __init__(self, settings: Settings, client: gcs.Client | None = None):
        self.settings = settings
        client = client or gcs.client(settings.project)
        self.data_bucket = client.bucket(settings.data_bucket)
        self.rejected_bucket = client.bucket(settings.predictions_bucket)

    def handle(self, message: PubSubMessage, now: datetime | None = None) -> str | None:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        parsed = parse_message(message.data, labeled=True)
        rejected_name, duplicate = None, False
        if parsed.problems:
            rejected_name, duplicate = rejected_store.store(
                self.rejected_bucket, message, parsed.problems, source="feedback"
            )
        data_name = None
        if parsed.items:
            data_name = objects.feedback(message.publish_time, message.id)
            records = feedback_records(parsed.items, message, now)
            duplicate |= not gcs.create_only(self.data_bucket, data_name, jsonl.dumps(records), jsonl.CONTENT_TYPE)
        logs.event(
            log,
            logging.WARNING if parsed.problems else logging.INFO,
            "feedback message already handled" if duplicate else "feedback message handled",
            message_id=message.id,
            items=len(parsed.items),
            problems=len(parsed.problems),
            training_object=data_name,
            rejected_object=rejected_name,
            duplicate=duplicate,
            errors=[p.error for p in parsed.problems[:5]],
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return data_name


def feedback_records(items: list[Item], message: PubSubMessage, received: datetime) -> list[dict]:
    """The training rows of one feedback message, as written under `training/feedback/` (and read by BigQuery's
    `feedback` tables): each item with its labels, the message's publish time as its event time (a late or
    redelivered old correction never overrides a newer one, saikika.core.rows.precedence), the message id, when it
    was received and, if the publisher said so, its `source` (Pub/Sub does not tell a subscriber who published)."""
    source = {"source": message.attributes["source"]} if "source" in message.attributes else {}
    return [
        {
            **item.to_json(),
            rows.EVENT_TIME_FIELD: message.publish_time.isoformat(),
            "message_id": message.id,
            "received_at": received.isoformat(),
            **source,
        }
        for item in items
    ]
