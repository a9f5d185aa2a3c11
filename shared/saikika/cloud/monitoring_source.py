"""Where the monitoring page's objects are read from: the three buckets (the local stack's on fake-gcs-server, or
the cloud's), or a folder holding the same objects as `FOLDER/<bucket kind>/<object name>` (`data`, `models`,
`predictions`: e.g. `FOLDER/models/monitoring/health.json`, `FOLDER/data/compacted/manifest.json`).

`read` lists and reads a window of days: time-stamped names (live quality, the decision log, run records) and day
folders (drift, feedback, rejected inputs) are listed from the window's first name on (`start_offset`), so a month
costs what the month holds, not all history. It reads no prediction object: items predicted per day come from the
drift objects' `items`, rejected inputs are counted from a listing, feedback rows from the compaction manifest's
shards and the loose feedback objects not yet compacted (few: each retrain run folds them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import requests
from google.api_core import exceptions as gexc

from saikika.cloud import gcs
from saikika.core import objects
from saikika.core.errors import SaikikaError
from saikika.core.monitoring_summary import MonitoringObjects

DATA, MODELS, PREDICTIONS = "data", "models", "predictions"


class SourceError(SaikikaError):
    """The objects cannot be read (no such bucket or folder, storage unreachable); the message says what to do."""


@dataclass(frozen=True)
class Listed:
    name: str
    generation: int | None  # None in a folder


class Source(Protocol):
    where: str

    def has(self, kind: str) -> bool: ...

    def list(self, kind: str, prefix: str, start: str | None = None) -> list[Listed]: ...

    def read(self, kind: str, name: str) -> bytes | None: ...


@dataclass(frozen=True)
class BucketSource:
    """The buckets by kind; a kind without a bucket (no setting for it) is not read, and the page says so."""

    buckets: Mapping[str, gcs.Bucket]

    @property
    def where(self) -> str:
        return ", ".join(f"{kind} gs://{bucket.name}" for kind, bucket in self.buckets.items())

    def has(self, kind: str) -> bool:
        return kind in self.buckets

    def list(self, kind: str, prefix: str, start: str | None = None) -> list[Listed]:
        bucket, patience = self.buckets[kind], gcs.SERVING
        with _storage_errors(bucket.name):
            blobs = bucket.list_blobs(prefix=prefix, start_offset=start, timeout=patience.timeout, retry=patience.retry)
            return [Listed(blob.name, int(blob.generation)) for blob in blobs]

    def read(self, kind: str, name: str) -> bytes | None:
        bucket = self.buckets[kind]
        with _storage_errors(bucket.name):
            found = gcs.read(bucket, name, gcs.SERVING)
        return None if found is None else found[0]


@contextmanager
def _storage_errors(bucket: str) -> Iterator[None]:
    """A missing bucket or an unreachable storage service as one SourceError line, not a traceback."""
    try:
        yield
    except gexc.NotFound:
        raise SourceError(f"no bucket gs://{bucket}: check --source or the SAIKIKA_*_BUCKET settings") from None
    except (requests.ConnectionError, gexc.RetryError, *gcs.TRANSIENT_ERRORS) as exc:
        # Told in one line by the command line (cli.mistakes), as every command's unreachable storage is.
        raise gcs.StorageUnreachable(f"cannot reach Cloud Storage at {gcs.endpoint()}") from exc


@dataclass(frozen=True)
class FolderSource:
    """A folder holding the buckets' objects as `<root>/<bucket kind>/<object name>`."""

    root: Path

    @property
    def where(self) -> str:
        return str(self.root)

    def has(self, kind: str) -> bool:
        return (self.root / kind).is_dir()

    def list(self, kind: str, prefix: str, start: str | None = None) -> list[Listed]:
        folder = self.root / kind
        under = folder / prefix[: prefix.rfind("/") + 1]  # only the prefix's own folder is walked
        if not under.is_dir():
            return []
        names = (path.relative_to(folder).as_posix() for path in under.rglob("*") if path.is_file())
        return [Listed(n, None) for n in sorted(names) if n.startswith(prefix) and (start is None or n >= start)]

    def read(self, kind: str, name: str) -> bytes | None:
        path = self.root / kind / name
        return path.read_bytes() if path.is_file() else None


def read(source: Source, since: datetime) -> MonitoringObjects:
    """The window's objects (from `since` on), for `saikika.core.monitoring_summary.summarise`. An object that is
    not a JSON object is left out and named in the notes: one bad object does not hide the page."""
    day, models = f"{since:%Y-%m-%d}", _ModelsReader(source)
    quality = models.all(objects.LIVE_QUALITY_PREFIX, objects.stamped_from(objects.LIVE_QUALITY_PREFIX, since))
    drift_days = models.all(objects.DRIFT_DAY_PREFIX, objects.drift_day(day))
    batch_drift = [d for d in models.all(objects.BATCH_DRIFT_PREFIX) if str(d.get("day", "")) >= day]
    decisions = [
        {**entry, "decided_at": entry.get("decided_at") or _stamp_iso(name)}
        for name, entry in models.named(
            objects.DECISION_LOG_PREFIX, objects.stamped_from(objects.DECISION_LOG_PREFIX, since)
        )
    ]
    runs = models.all(objects.RETRAIN_RUNS_PREFIX, objects.stamped_from(objects.RETRAIN_RUNS_PREFIX, since))
    health = models.json(objects.HEALTH_OBJECT)
    champions = {q.get("champion_version") for q in quality} | {
        d.get("version") for d in decisions if d.get("outcome") == "promoted"
    }
    champions.add(((health or {}).get("champion") or {}).get("version"))
    offline = {v: models.offline_micro_f1(v) for v in sorted(champions - {None}, key=str)}
    return MonitoringObjects(
        since=day,
        live_quality=tuple(sorted(quality, key=lambda q: str(q.get("run_started")))),
        drift_days=tuple(sorted(drift_days, key=lambda d: str(d.get("day")))),
        batch_drift=tuple(sorted(batch_drift, key=lambda d: (str(d.get("day")), str(d.get("computed_at"))))),
        health=health,
        decisions=tuple(sorted(decisions, key=lambda d: str(d["decided_at"]))),
        offline_micro_f1=offline,
        runs=tuple(sorted(runs, key=lambda r: str(r.get("started_at")))),
        rejected=rejected_per_day(source, day) if source.has(PREDICTIONS) else {},
        feedback_rows=feedback_rows_per_day(source, day) if source.has(DATA) else {},
        notes=(*_missing(source), *(f"left out, not a JSON object: {name}" for name in models.unreadable)),
    )


def _missing(source: Source) -> list[str]:
    return [
        f"not counted: no {kind} objects (a {kind} bucket: set SAIKIKA_{kind.upper()}_BUCKET; a folder: FOLDER/{kind}/)"
        for kind in (DATA, PREDICTIONS)
        if not source.has(kind)
    ]


@dataclass
class _ModelsReader:
    """JSON objects of the models bucket; the names of those that are not JSON objects are kept in `unreadable`."""

    source: Source
    unreadable: list[str] = field(default_factory=list)

    def json(self, name: str) -> dict | None:
        data = self.source.read(MODELS, name)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.unreadable.append(name)
            return None
        return value

    def named(self, prefix: str, start: str | None = None) -> Iterator[tuple[str, dict]]:
        for listed in self.source.list(MODELS, prefix, start):
            if listed.name.endswith(".json") and (value := self.json(listed.name)) is not None:
                yield listed.name, value

    def all(self, prefix: str, start: str | None = None) -> list[dict]:
        return [value for _name, value in self.named(prefix, start)]

    def offline_micro_f1(self, version: str) -> float | None:
        metadata = self.json(objects.version_file(version, objects.METADATA_FILE)) or {}
        return (metadata.get("metrics") or {}).get("micro_f1")


def _json(data: bytes | None):
    try:
        return None if data is None else json.loads(data)
    except ValueError:
        return None


def _stamp_iso(name: str) -> str | None:
    when = objects.stamp_time(name)
    return None if when is None else when.isoformat()


def rejected_per_day(source: Source, since_day: str) -> dict[str, dict[str, int]]:
    """Rejected input messages per day and source (one object each), from listings of their day folders."""
    counts: dict[str, Counter[str]] = {}
    for kind in objects.REJECTED_SOURCES:
        prefix = objects.rejected_days(kind)
        for listed in source.list(PREDICTIONS, prefix, prefix + since_day):
            if (day := objects.day_of(listed.name)) is not None:
                counts.setdefault(day, Counter())[kind] += 1
    return {day: dict(by_source) for day, by_source in sorted(counts.items())}


def feedback_rows_per_day(source: Source, since_day: str) -> dict[str, int]:
    """Feedback rows per day: the compaction manifest's shards (their row counts), and the loose feedback objects
    the manifest does not list as folded (their lines). The loose objects are listed before the manifest is read,
    so one folded meanwhile is either still listed as retiring (not counted twice) or deleted (read as nothing)."""
    prefix = objects.FEEDBACK_FOLDER + "dt="
    loose = source.list(DATA, prefix, prefix + since_day)
    manifest = _json(source.read(DATA, objects.COMPACTION_MANIFEST)) or {}
    retiring = {(entry["name"], entry.get("generation")) for entry in manifest.get("retiring", [])}
    retiring_names = {name for name, _generation in retiring}
    rows: Counter[str] = Counter()
    for shard in manifest.get("shards", []):
        if str(shard.get("day", "")) >= since_day:
            rows[shard["day"]] += int(shard.get("rows", 0))
    for listed in loose:
        folded = (listed.name, listed.generation) in retiring or (
            listed.generation is None and listed.name in retiring_names
        )
        day = objects.day_of(listed.name)
        if not folded and day is not None and listed.name.endswith(".jsonl"):
            data = source.read(DATA, listed.name) or b""
            rows[day] += sum(1 for line in data.split(b"\n") if line.strip())
    return dict(sorted(rows.items()))
