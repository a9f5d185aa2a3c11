"""The drift step: a day's label mix (event path and online log) and each batch run's, against the champion's
baseline, written under `monitoring/drift/` in the models bucket and logged as `label drift`.

A day's counts are one listing of `predictions/dt=<day>/` in the predictions bucket: each object carries its label
counts as custom metadata (`saikika.core.drift.METADATA_KEY`) and a listing returns custom metadata, so no
prediction object is read and the cost grows with that day's objects, never with the days before. Today is
recomputed at most every SAIKIKA_DRIFT_INTERVAL_S (the previous object's `computed_at` says when it last was), and
yesterday once more after it closed, so its object holds the whole day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from saikika.cloud import gcs, registry
from saikika.core import logs, objects
from saikika.core.drift import (
    LabelCounts,
    LabelDrift,
    baseline_of,
    batch_run_drift,
    label_drift,
)
from saikika.core.settings import MonitoringSettings, Settings

log = logging.getLogger("saikika.drift")

# A listing page returns only what the step reads: names and custom metadata; 1,000 objects a page, Cloud Storage's
# most (said explicitly, so the emulator pages as the service does and the bench counts its requests truly).
_LISTED_FIELDS = "items(name,metadata),nextPageToken"
_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Baseline:
    """A model version's label shares, and where they came from."""

    version: str
    shares: dict[str, float]
    kind: str


def update(settings: Settings, client: gcs.Client, now: float) -> list[LabelDrift]:
    """The tick's drift step: the days due (today every interval, yesterday once after midnight), each computed
    from one listing, written to `monitoring/drift/dt=<day>.json` and logged. What it wrote; [] when nothing was
    due or no champion has been promoted yet."""
    models = client.bucket(settings.models_bucket)
    clock = datetime.fromtimestamp(now, UTC)
    midnight = clock.replace(hour=0, minute=0, second=0, microsecond=0)
    due = []
    for day in (midnight - timedelta(days=1), midnight):
        key = f"{day:%Y-%m-%d}"
        found = gcs.read_json(models, objects.drift_day(key))
        last = None if found is None else _computed_at(found[0])
        closed_since = day + timedelta(days=1) if day < midnight else None
        if _is_due(last, clock, closed_since, settings.drift_interval_s):
            due.append((key, 0 if found is None else found[1]))
    if not due:
        return []
    baseline = champion_baseline(models)
    if baseline is None:
        logs.event(log, logging.DEBUG, "label drift skipped: no champion yet")
        return []
    written = []
    for day, generation in due:
        counts, listed, uncounted = day_counts(client, client.bucket(settings.predictions_bucket), day)
        drift = label_drift(
            counts,
            baseline.shares,
            settings.drift_bound,
            day=day,
            computed_at=clock.isoformat(),
            champion_version=baseline.version,
            objects=listed,
            baseline=baseline.kind,
            uncounted_objects=uncounted,
            min_items=settings.drift_min_items,
        )
        name = objects.drift_day(day)
        # Compare-and-swap on what was read: a tick running alongside wrote the same day already; keep its object.
        if gcs.write_if_generation(models, name, gcs.to_json(drift.to_json()), gcs.JSON, generation) is None:
            continue
        _log(drift, name)
        written.append(drift)
    return written


def _computed_at(previous: object) -> datetime | None:
    """When a day's object was computed; None (compute it again) if the object is not one of ours."""
    try:
        return datetime.fromisoformat(previous["computed_at"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


def _is_due(last: datetime | None, now: datetime, closed_since: datetime | None, interval_s: float) -> bool:
    """Never computed: due. A closed day: due once more if last computed before it closed. Today: every interval."""
    if last is None:
        return True
    if closed_since is not None:
        return last < closed_since
    return (now - last).total_seconds() >= interval_s


def champion_baseline(models: gcs.Bucket) -> Baseline | None:
    champion = registry.read_champion(models)
    if champion is None:
        return None
    return version_baseline(models, champion.version)


def version_baseline(models: gcs.Bucket, version: str) -> Baseline | None:
    metadata = registry.read_metadata(models, version)
    if metadata is None:
        return None
    shares, kind = baseline_of(metadata)
    return Baseline(version, shares, kind)


def day_counts(client: gcs.Client, predictions: gcs.Bucket, day: str) -> tuple[LabelCounts, int, int]:
    """One day's label counts from one listing of its folder (metadata only, nothing downloaded): the counts, the
    objects listed, and how many of them carried no readable counts (written before counts were kept)."""
    counts, listed, uncounted = LabelCounts(), 0, 0
    for blob in client.list_blobs(
        predictions, prefix=objects.predictions_day(day), fields=_LISTED_FIELDS, page_size=_PAGE_SIZE
    ):
        if not blob.name.endswith(".jsonl"):
            continue
        listed += 1
        found = LabelCounts.of_object(blob.metadata)
        if found is None:
            uncounted += 1
        else:
            counts.merge(found)
    return counts, listed, uncounted


def record_batch_run(
    models: gcs.Bucket,
    run_id: str,
    counts: LabelCounts,
    model_version: str,
    monitoring: MonitoringSettings,
    parts: int = 0,
    now: datetime | None = None,
) -> LabelDrift | None:
    """A finished batch run's drift against the version that predicted it, `monitoring/drift/batch/<run id>.json`.
    Monitoring never fails the run: a write that fails is logged (ERROR) and the run stands."""
    now = now or datetime.now(UTC)
    name = objects.batch_drift(run_id)
    try:
        metadata = registry.read_metadata(models, model_version)
        if metadata is None:
            return None
        drift = batch_run_drift(
            counts, metadata, run_id, monitoring.drift_bound, parts, now, monitoring.drift_min_items
        )
        gcs.create_json(models, name, drift.to_json())
    except Exception as exc:  # noqa: BLE001  the predictions are written; a monitoring object is not worth a redo
        logs.event(log, logging.ERROR, "label drift not recorded", run_id=run_id, object=name, error=repr(exc))
        return None
    _log(drift, name)
    return drift


def _log(drift: LabelDrift, name: str) -> None:
    logs.event(
        log,
        logging.WARNING if drift.above_bound else logging.INFO,
        "label drift",
        **drift.log_fields(),
        objects=drift.objects,
        uncounted_objects=drift.uncounted_objects,
        object=name,
    )
