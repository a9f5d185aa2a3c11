"""Rejected records in the predictions bucket: `rejected/[source/]dt=…/<message_id>.json`, create-only."""

from __future__ import annotations

from google.cloud import storage

from saikika.cloud import gcs
from saikika.core import objects
from saikika.core.events import PubSubMessage
from saikika.core.items import Problem
from saikika.core.rejections import rejected_record


def store(bucket: storage.Bucket, message: PubSubMessage, problems: list[Problem], source: str) -> tuple[str, bool]:
    """Write the rejected record, create-only. Returns its name and whether it already existed."""
    name = objects.rejected(message.publish_time, message.id, source)
    created = gcs.create_json(bucket, name, rejected_record(message, problems, source=source))
    return name, not created
