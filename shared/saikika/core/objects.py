"""Object names: the layout of the three buckets, in one place. Pure: names only, no I/O.

- data bucket: `training/**.jsonl` (what retraining reads; feedback lands under `training/feedback/` and is
  folded by compaction into day shards under `compacted/dt=<day>/`, listed by `compacted/manifest.json`),
  `eval/holdout.jsonl` (the trusted holdout file, never trained on), `batch/input/**.jsonl` (files the batch
  function predicts; retraining ignores them) and `catalogue/*.jsonl` (what re-score on promotion predicts);
- models bucket: `models/<version>/` (a version's files; `metadata.json` last, as its commit marker),
  `models/champion.json` (the pointer), `models/history/` (the decision log), `retrain/` (the lease,
  state, pending work and run records of retraining) and `word-vectors/` (pretrained title word vectors that
  retraining may read, uploaded by an engineer; nothing is triggered by them) and `monitoring/` (what the loop
  records of itself: `quality/`, the live quality of each run; `drift/`, the label drift of each day and batch
  run; `health.json`; outside `models/`, so nothing is triggered by it);
- predictions bucket: `predictions/` (the event path's `dt=<day>/<message id>.jsonl` and the online path's sampled
  `dt=<day>/http-<writer>-<time>-<sequence>.jsonl`) and `rejected/`, and batch runs' output under
  `batch/dt=<date>/run=<run id>/` (`part-SSSSS-of-NNNNN.jsonl`, then `_SUCCESS`) with their bad lines under
  `rejected/batch/dt=<date>/run=<run id>/`; nothing here triggers anything.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

# ---- data bucket ----------------------------------------------------------------------------------
TRAINING_PREFIX = "training/"
FEEDBACK_PREFIX = "training/feedback"
# Base data a person (or the demo) uploads: an exported catalogue, read where it is; any name under training/ works.
BASE_TRAINING_PREFIX = "training/base/"
FEEDBACK_FOLDER = FEEDBACK_PREFIX + "/"
HOLDOUT_OBJECT = "eval/holdout.jsonl"
BATCH_INPUT_PREFIX = "batch/input/"
# The catalogue re-scored on promotion (terraform's rescore_on_promotion); nothing triggers on it.
CATALOGUE_PREFIX = "catalogue/"

# ---- models bucket --------------------------------------------------------------------------------
MODELS_PREFIX = "models/"
WORD_VECTORS_PREFIX = "word-vectors/"
CHAMPION_OBJECT = "models/champion.json"
# One object per decision (judged, promoted by hand, rolled back): the decision log.
DECISION_LOG_PREFIX = "models/history/"
# A version's files.
MODEL_FILE = "model.skops"
INFERENCE_FILE = "model.npz"
METADATA_FILE = "metadata.json"
DECISION_FILE = "decision.json"
REPORT_FOLDER = "report/"
RETRAIN_LEASE_OBJECT = "retrain/lease.json"
RETRAIN_STATE_OBJECT = "retrain/state.json"
RETRAIN_RUNS_PREFIX = "retrain/runs/"
# One small object per data event not yet trained on: what "is anything new?" lists, instead of all history.
RETRAIN_PENDING_PREFIX = "retrain/pending/"
# One object per training-data digest a run started on, naming the version it produced: a run on data already
# trained on (a crash after the push, a re-upload of the same bytes) finds it and pushes nothing.
RETRAIN_TRAINED_PREFIX = "retrain/trained/"

# ---- monitoring (models bucket; the notification is only on models/, so nothing here triggers anything) -------
MONITORING_PREFIX = "monitoring/"
# One live-quality object per retrain run that scored feedback the champion never trained on (names sort by time).
LIVE_QUALITY_PREFIX = MONITORING_PREFIX + "quality/"
# One LabelDrift object per day of the event path (`dt=<day>.json`) and per batch run (`batch/<run id>.json`).
DRIFT_PREFIX = MONITORING_PREFIX + "drift/"
DRIFT_DAY_PREFIX = DRIFT_PREFIX + "dt="
BATCH_DRIFT_PREFIX = DRIFT_PREFIX + "batch/"
# The loop's health, rewritten by every tick (`saikika status` reads it).
HEALTH_OBJECT = MONITORING_PREFIX + "health.json"


def drift_day(day: str) -> str:
    """The event path's label drift of one day (`YYYY-MM-DD`)."""
    return f"{DRIFT_DAY_PREFIX}{day}.json"


def batch_drift(run_id: str) -> str:
    return f"{BATCH_DRIFT_PREFIX}{_safe(run_id)}.json"


def rejected_day(day: str) -> str:
    """The folder of one day's rejected items (`rejected/dt=<day>/`; other sources have folders of their own)."""
    return f"{rejected_days()}{day}/"


def predictions_day(day: str) -> str:
    """The folder of one day's event-path and online predictions (`predictions/dt=YYYY-MM-DD/`)."""
    return f"{PREDICTIONS_PREFIX}dt={day}/"


# ---- compacted training data (data bucket; outside training/, so writing it triggers nothing) ---------
COMPACTED_PREFIX = "compacted/"
COMPACTION_MANIFEST = "compacted/manifest.json"

_VERSION_METADATA = re.compile(r"^models/([^/]+)/metadata\.json$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def version_prefix(version: str) -> str:
    return f"{MODELS_PREFIX}{version}/"


def version_file(version: str, name: str) -> str:
    return version_prefix(version) + name


def version_of_metadata(name: str) -> str | None:
    """The version whose commit marker `name` is (`models/<version>/metadata.json`), else None."""
    match = _VERSION_METADATA.match(name)
    return match.group(1) if match else None


def is_training_object(name: str) -> bool:
    return name.startswith(TRAINING_PREFIX) and name.endswith(".jsonl")


def is_word_vectors(name: str) -> bool:
    return name.startswith(WORD_VECTORS_PREFIX) and len(name) > len(WORD_VECTORS_PREFIX)


def word_vectors_object(stem: str, sha256: str) -> str:
    """Where pushed word vectors go: their file's stem and the start of their digest (same bytes, same name)."""
    return f"{WORD_VECTORS_PREFIX}{stem}-{sha256[:12]}.npz"


def is_batch_input(name: str) -> bool:
    return name.startswith(BATCH_INPUT_PREFIX) and name.endswith(".jsonl")


def _stamp(when: datetime) -> str:
    return f"{when:%Y%m%dT%H%M%S.%fZ}"


_STAMP = re.compile(r"\d{8}T\d{6}\.\d{6}Z")


def stamp_time(name: str) -> datetime | None:
    """The time stamp a time-stamped name carries (its last path segment's), if any."""
    match = _STAMP.search(name.rsplit("/", 1)[-1])
    return datetime.strptime(match.group(0), "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC) if match else None


def stamped_from(prefix: str, when: datetime) -> str:
    """The first possible name under a time-stamped prefix (run records, the decision log, live quality) written at
    or after `when`: a listing's start offset, so a look back is bounded by time, not by history."""
    return f"{prefix}{_stamp(when)}"


def decision_log_entry(when: datetime, version: str) -> str:
    return f"{DECISION_LOG_PREFIX}{_stamp(when)}-{version}.json"


def retrain_run(started: datetime) -> str:
    return f"{RETRAIN_RUNS_PREFIX}{_stamp(started)}.json"


# A pending marker's name carries the time of its work (the training object's write time, or the request's), so
# deciding whether a run is due is one listing: no marker is read.
_PENDING = re.compile(r"^retrain/pending/(\d{8}T\d{6}\.\d{6}Z)-(request-)?")


def retrain_pending(name: str, generation: int, updated: datetime) -> str:
    """The pending-work marker of one training object generation (redelivered events find the same one)."""
    return (
        f"{RETRAIN_PENDING_PREFIX}{_stamp(updated)}-{hashlib.sha256(name.encode()).hexdigest()[:24]}-{generation}.json"
    )


def retrain_request(message_id: str, received: datetime) -> str:
    """The pending-work marker of a forced retrain request."""
    return f"{RETRAIN_PENDING_PREFIX}{_stamp(received)}-request-{_safe(message_id)}.json"


def pending_work(marker: str) -> tuple[float, bool] | None:
    """(epoch seconds of the work, whether it is a forced request) from a marker's name; None if not a marker."""
    match = _PENDING.match(marker)
    if not match:
        return None
    when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    return when.timestamp(), match.group(2) is not None


def live_quality(started: datetime, version: str) -> str:
    """One run's live quality of the champion `version`: named by the run's start, so the names sort by time."""
    return f"{LIVE_QUALITY_PREFIX}{_stamp(started)}-{_safe(version)}.json"


def retrain_trained(digest: str) -> str:
    return f"{RETRAIN_TRAINED_PREFIX}{digest}.json"


def compacted_shard(day: str, written: datetime, digest: str) -> str:
    return f"{COMPACTED_PREFIX}dt={day}/{_stamp(written)}-{digest[:12]}.jsonl"


_DAY = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")


def day_of(name: str) -> str | None:
    """The `dt=YYYY-MM-DD` partition an object name carries, if any."""
    match = _DAY.search(name)
    return match.group(1) if match else None


# ---- per-message results, keyed by message id and publish date ---------------------------------------
def _safe(message_id: str) -> str:
    # Pub/Sub ids are digits; anything else is made safe for an object name, not trusted.
    return _UNSAFE.sub("_", message_id)[:200] or "_"


def _dated(prefix: str, published: datetime, message_id: str, suffix: str) -> str:
    return f"{prefix}/dt={published:%Y-%m-%d}/{_safe(message_id)}{suffix}"


PREDICTIONS_PREFIX = "predictions/"


def predictions(published: datetime, message_id: str) -> str:
    return f"{predictions_day(f'{published:%Y-%m-%d}')}{_safe(message_id)}.jsonl"


REJECTED_PREFIX = "rejected/"
# The message sources whose rejected inputs are kept one object per message (`batch` keeps a run's bad lines in files).
REJECTED_SOURCES = ("items", "feedback")


def rejected_days(source: str = "items") -> str:
    """The prefix of a source's rejected objects' day folders (`rejected/dt=` for items, `rejected/<source>/dt=`)."""
    return f"{REJECTED_PREFIX}dt=" if source == "items" else f"{REJECTED_PREFIX}{source}/dt="


def rejected(published: datetime, message_id: str, source: str = "items") -> str:
    # Items keep the documented `rejected/dt=...` path; other sources get a folder of their own,
    # since message ids are only unique within a topic.
    return rejected_days(source) + f"{published:%Y-%m-%d}/{_safe(message_id)}.json"


# Sampled online predictions (predict_http's request-response log), beside the event path's in the same `dt=` days,
# so the `predictions` table reads them too; `http-` keeps them apart from message ids (digits) and is what the
# function's IAM condition allows.
HTTP_PREDICTIONS_MARK = "http-"


def http_predictions(written: datetime, writer: str, sequence: int) -> str:
    """One flush of one writer (a serving process): never the same name twice."""
    return f"predictions/dt={written:%Y-%m-%d}/{HTTP_PREDICTIONS_MARK}{_safe(writer)}-{_stamp(written)}-{sequence:06d}.jsonl"


def feedback(published: datetime, message_id: str) -> str:
    return _dated(FEEDBACK_PREFIX, published, message_id, ".jsonl")


# ---- batch runs: one folder per run, hive-partitioned by date for BigQuery ----------------------------
BATCH_OUTPUT_PREFIX = "batch/"
BATCH_ERRORS_PREFIX = "rejected/batch/"
# Written last, when every part is in place: its presence says the run is complete. Not `.jsonl`, so the
# BigQuery external table (`batch/*.jsonl`) never reads it.
BATCH_SUCCESS_FILE = "_SUCCESS"
# The function's record of a run it started (model version pinned) or handed to a batch job (job id).
BATCH_RUN_FILE = "_RUN.json"
BATCH_PART_PREFIX = "part-"
# Where a pipeline run given no errors folder puts its bad lines: beside its parts.
PIPELINE_ERRORS_FOLDER = "errors"


def batch_run_id(input_name: str, generation: int) -> str:
    """One run per input object generation: a redelivered event finds the same run."""
    stem = input_name[len(BATCH_INPUT_PREFIX) :] if input_name.startswith(BATCH_INPUT_PREFIX) else input_name
    stem = stem[: -len(".jsonl")] if stem.endswith(".jsonl") else stem
    return f"{_UNSAFE.sub('_', stem)[:120]}-g{generation}"


def batch_run_folder(day: datetime, run_id: str) -> str:
    return f"{BATCH_OUTPUT_PREFIX}dt={day:%Y-%m-%d}/run={_safe(run_id)}/"


def batch_errors_folder(day: datetime, run_id: str) -> str:
    return f"{BATCH_ERRORS_PREFIX}dt={day:%Y-%m-%d}/run={_safe(run_id)}/"


def batch_part(index: int, count: int) -> str:
    """Beam's shard naming (`-SSSSS-of-NNNNN`), so function runs and pipeline runs look alike."""
    return f"{BATCH_PART_PREFIX}{index:05d}-of-{count:05d}.jsonl"


def base_training(name: str) -> str:
    """Where an exported catalogue of labeled rows goes for retraining (`training/base/NAME`)."""
    return f"{BASE_TRAINING_PREFIX}{name}"
