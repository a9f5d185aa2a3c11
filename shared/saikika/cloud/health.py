"""The tick's loop-health step: gather what `saikika.core.health.assess` needs without reading history, write
`monitoring/health.json` and log one `loop health` line (docs/monitoring.md#loop-health).

What it costs, whatever the history: the champion pointer and its metadata, retrain/state.json, the previous
health, today's drift object (one read each); the pending markers, today's rejected items (one listing each); the
run records, decision-log entries and live-quality objects written since the previous tick's cursors (a listing
from a start offset, and a read of each new record back to the newest success). Only the first tick, with no
cursors yet, looks back further: FIRST_LOOK_BACK_S.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from saikika.cloud import gcs, registry
from saikika.cloud.retrain_state import RetrainStore
from saikika.core import logs, objects
from saikika.core.decisions import Decision
from saikika.core.health import (
    LOG_LEVELS,
    Bounds,
    CandidateCount,
    ChampionHealth,
    LoopHealth,
    Observed,
    RunCount,
    assess,
    count_candidates,
    count_runs,
)
from saikika.core.retraining import RunRecord
from saikika.core.settings import Settings

log = logging.getLogger("saikika.health")

# With no cursors yet (the first tick, or an unreadable health object), how far back records are counted.
FIRST_LOOK_BACK_S = 7 * 86400.0


def update(settings: Settings, client: gcs.Client, now: float) -> LoopHealth:
    """Assess the loop now, write monitoring/health.json (unless another tick wrote it meanwhile) and log it."""
    models = client.bucket(settings.models_bucket)
    previous, generation = read(models)
    observed = observe(models, client.bucket(settings.predictions_bucket), previous, now)
    health = assess(observed, now, Bounds(settings.stall_after_s, settings.stall_failed_runs))
    # A tick running at the same time computed the same counts from the same cursors: losing the race loses nothing.
    gcs.write_if_generation(models, objects.HEALTH_OBJECT, gcs.to_json(health.to_json()), gcs.JSON, generation)
    logs.event(log, LOG_LEVELS[health.status], "loop health", **health.log_fields())
    return health


def read(bucket: gcs.Bucket) -> tuple[LoopHealth | None, int]:
    """The health the last tick wrote and its generation; (None, 0) if none. An object this release cannot read is
    replaced (its counts start again from FIRST_LOOK_BACK_S)."""
    found = gcs.read_json(bucket, objects.HEALTH_OBJECT)
    if found is None:
        return None, 0
    try:
        return LoopHealth.from_json(found[0]), found[1]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None, found[1]


def observe(models: gcs.Bucket, predictions: gcs.Bucket, previous: LoopHealth | None, now: float) -> Observed:
    store = RetrainStore(models)
    today = datetime.fromtimestamp(now, UTC)
    look_back = today - timedelta(seconds=FIRST_LOOK_BACK_S)
    runs = previous.runs if previous else RunCount()
    return Observed(
        champion=champion(models),
        last_run=store.state()[0].last_run,
        pending_since=[p.updated for p in store.pending()],
        runs=_count_runs(models, runs, look_back),
        candidates=_count_candidates(models, previous.candidates if previous else CandidateCount(), look_back),
        live_quality=_newest_live_quality(models, runs.cursor, look_back) or (previous and previous.last_live_quality),
        drift=_json(models, objects.drift_day(f"{today:%Y-%m-%d}")),
        rejected_inputs_today=sum(1 for _ in predictions.list_blobs(prefix=objects.rejected_day(f"{today:%Y-%m-%d}"))),
    )


def champion(models: gcs.Bucket) -> ChampionHealth | None:
    """The champion, when it was promoted and its offline micro F1 (its metadata.json's)."""
    pointer = registry.read_champion(models)
    if pointer is None:
        return None
    metadata = registry.read_metadata(models, pointer.version) or {}
    since = pointer.promoted_at or metadata.get("created_at")
    return ChampionHealth(pointer.version, since, None, (metadata.get("metrics") or {}).get("micro_f1"))


def _after(bucket: gcs.Bucket, prefix: str, cursor: str | None, look_back: datetime) -> list[str]:
    """Names under a time-stamped prefix written after `cursor` (none yet: since `look_back`), oldest first. Run
    records appear in name order (runs hold the lease one at a time, a training job's included), decision-log
    entries are stamped when written: nothing new lands before a cursor."""
    offset = cursor or objects.stamped_from(prefix, look_back)
    return [blob.name for blob in bucket.list_blobs(prefix=prefix, start_offset=offset) if blob.name > (cursor or "")]


def _count_runs(models: gcs.Bucket, previous: RunCount, look_back: datetime) -> RunCount:
    names = _after(models, objects.RETRAIN_RUNS_PREFIX, previous.cursor, look_back)
    if not names:
        return previous
    records = (RunRecord.from_json(value) for value in _read_each(models, reversed(names)))
    return count_runs(previous, records, names[-1])


def _count_candidates(models: gcs.Bucket, previous: CandidateCount, look_back: datetime) -> CandidateCount:
    names = _after(models, objects.DECISION_LOG_PREFIX, previous.cursor, look_back)
    if not names:
        return previous
    decisions = (Decision.from_json(value) for value in _read_each(models, reversed(names)))
    return count_candidates(previous, decisions, names[-1])


def _newest_live_quality(models: gcs.Bucket, runs_cursor: str | None, look_back: datetime) -> dict | None:
    """The newest live-quality object, listed from the last counted run's start: a run writes its live quality
    under its own start's stamp, so every run not yet counted (and that one) is in the listing. None: no run since
    wrote one (the health keeps the one it had)."""
    counted = objects.stamp_time(runs_cursor) if runs_cursor else None
    offset = objects.stamped_from(objects.LIVE_QUALITY_PREFIX, counted or look_back)
    names = [blob.name for blob in models.list_blobs(prefix=objects.LIVE_QUALITY_PREFIX, start_offset=offset)]
    return next(_read_each(models, reversed(names)), None)


def _read_each(bucket: gcs.Bucket, names: Iterator[str]) -> Iterator[dict]:
    """Each object's JSON, read only when asked for (the counts stop at the newest success); vanished ones skipped."""
    for name in names:
        value = _json(bucket, name)
        if value is not None:
            yield value


def _json(bucket: gcs.Bucket, name: str) -> dict | None:
    found = gcs.read_json(bucket, name)
    return found[0] if found and isinstance(found[0], dict) else None
