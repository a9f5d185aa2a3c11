"""Items message in, one predictions object (and, for bad input, one rejected object) out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from saikika.cloud import gcs, rejected_store
from saikika.cloud.champion_cache import ChampionCache
from saikika.core import jsonl, logs, objects, records
from saikika.core.drift import LabelCounts
from saikika.core.events import PubSubMessage
from saikika.core.items import parse_message
from saikika.core.settings import Settings

log = logging.getLogger("saikika.predict")


@dataclass(frozen=True)
class Outcome:
    predictions_object: str | None
    rejected_object: str | None
    predicted: int
    rejected_items: int
    duplicate: bool
    model_version: str | None


class Predictor:
    """One per function instance: holds the storage client and the shared model cache."""

    def __init__(self, settings: Settings, client: gcs.Client | None = None):
        self.settings = settings
        self._client = client or gcs.client(settings.project)
        self.predictions_bucket = self._client.bucket(settings.predictions_bucket)
        self.models = ChampionCache(self._client.bucket(settings.models_bucket), settings.model_ttl_s)

    def handle(self, message: PubSubMessage, now: datetime | None = None) -> Outcome:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        parsed = parse_message(message.data, labeled=False)
        parsed_items, problems = parsed.items, parsed.problems

        rejected_name = None
        duplicate = False
        if problems:
            rejected_name, duplicate = rejected_store.store(self.predictions_bucket, message, problems, source="items")

        predictions_name = None
        version = None
        if parsed_items:
            model = self.models.get()  # NoChampionError is transient: the message is redelivered
            version = model.version
            predicted_at = now.isoformat()
            lines = [
                records.prediction(item.id, p.labels, p.scores, version, predicted_at, message_id=message.id)
                for item, p in zip(parsed_items, model.predict(parsed_items))
            ]
            predictions_name = objects.predictions(message.publish_time, message.id)
            # The label counts ride along as custom metadata: a day's drift is one listing, no object read.
            counts = LabelCounts.of(line["labels"] for line in lines)
            duplicate |= not gcs.create_only(
                self.predictions_bucket,
                predictions_name,
                jsonl.dumps(lines),
                jsonl.CONTENT_TYPE,
                metadata=counts.object_metadata(),
            )

        outcome = Outcome(predictions_name, rejected_name, len(parsed_items), len(problems), duplicate, version)
        logs.event(
            log,
            logging.WARNING if problems else logging.INFO,
            "items message already handled" if duplicate else "items message handled",
            message_id=message.id,
            items=len(parsed_items),
            problems=len(problems),
            model_version=version,
            predictions_object=predictions_name,
            rejected_object=rejected_name,
            duplicate=duplicate,
            errors=[p.error for p in problems[:5]],
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return outcome
