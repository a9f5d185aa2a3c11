"""Retrain when new training data lands (or on a periodic request), debounced and one run at a time.

- Nothing new since the last run (every object under training/ has the generation that run used):
  acknowledge. This is what turns a burst of N files into few runs.
- New files still arriving (the newest is younger than SAIKIKA_RETRAIN_SETTLE_S, and the oldest
  waiting one is younger than SAIKIKA_RETRAIN_MIN_INTERVAL_S, so a steady trickle cannot starve
  training), a run in progress (the lease in the models bucket), or a run started less than
  SAIKIKA_RETRAIN_MIN_INTERVAL_S ago: raise RetryLater, so Pub/Sub redelivers with backoff. The
  first redelivery after that trains once on everything; the others then find nothing new. So data
  arriving during a run causes exactly one follow-up run, and no file is left out.
- Otherwise take the lease, snapshot the object list, train, write the candidate version (metadata.json
  last: the commit marker that the promote function reacts to), record the run, release the lease.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from google.cloud import storage

from saikika.cloud import gcs, lease, registry, training_store
from saikika.core import jsonl, logs, objects, splits
from saikika.core.errors import TransientError
from saikika.core.events import ObjectEvent, PubSubMessage
from saikika.core.settings import Settings
from saikika.model import report
from saikika.model.training import TrainingDataError, serialize, train

log = logging.getLogger("saikika.retrain")


class RetryLater(TransientError):
    """Not now: a run is in progress or the last one started too recently."""


@dataclass(frozen=True)
class RunResult:
    status: str  # "trained", "skipped", "up-to-date", "ignored"
    reason: str
    version: str | None = None


class Retrainer:
    def __init__(self, settings: Settings, client: storage.Client | None = None, clock=time.time):
        self.settings = settings
        client = client or gcs.client(settings.project)
        self.data_bucket = client.bucket(settings.data_bucket)
        self.models_bucket = client.bucket(settings.models_bucket)
        self._clock = clock

    # ---- triggers ---------------------------------------------------------------------------
    def on_object(self, event: ObjectEvent) -> RunResult:
        if (event.bucket != self.settings.data_bucket or not objects.is_training_object(event.name)
                or event.event_type != "OBJECT_FINALIZE"):
            logs.event(log, logging.DEBUG, "event ignored: not training data", bucket=event.bucket, object=event.name)
            return RunResult("ignored", f"gs://{event.bucket}/{event.name} is not training data")
        return self.run(trigger=f"gs://{event.bucket}/{event.name}#{event.generation}", force=False)

    def on_request(self, message: PubSubMessage) -> RunResult:
        try:
            body = jsonl.loads(message.data or b"{}")
        except (jsonl.NotJson, UnicodeDecodeError):
            body = {"reason": message.data.decode("utf-8", "replace")}
        body = body if isinstance(body, dict) else {"reason": str(body)}
        reason = str(body.get("reason") or "periodic retrain request")
        force = body.get("force", False)
        if not isinstance(force, bool):
            # Only JSON true forces a run: the string "false" is not a request to retrain regardless.
            logs.event(log, logging.WARNING, "retrain request: 'force' is not true or false; not forcing",
                       message_id=message.id, force=repr(force))
            force = False
        return self.run(trigger=f"retrain-requests message {message.id}: {reason}", force=force)

    # ---- the run ----------------------------------------------------------------------------
    def run(self, trigger: str, force: bool) -> RunResult:
        listed = training_store.list_objects(self.data_bucket)
        state_found = gcs.read_json(self.models_bucket, objects.RETRAIN_STATE_OBJECT)
        state = state_found[0] if state_found else {}
        trained = state.get("objects", {})
        new = [o for o in listed if trained.get(o.name) != o.generation]
        if not new and not force:
            logs.event(log, logging.INFO, "retrain not needed: no new training data", trigger=trigger)
            return RunResult("up-to-date", "every training object was in the last run")

        now = self._clock()
        newest_age = now - max(o.updated for o in new) if new else float("inf")
        oldest_age = now - min(o.updated for o in new) if new else float("inf")
        if newest_age < self.settings.retrain_settle_s and oldest_age < self.settings.retrain_min_interval_s:
            logs.event(log, logging.INFO, "retrain deferred: new data still arriving", trigger=trigger,
                       new_objects=len(new), newest_age_s=round(newest_age, 1))
            raise RetryLater(f"newest training object is {newest_age:.1f} s old; waiting for "
                             f"{self.settings.retrain_settle_s:.0f} s of quiet")
        since_last = now - float(state.get("last_started_at", 0))
        if since_last < self.settings.retrain_min_interval_s:
            wait = self.settings.retrain_min_interval_s - since_last
            logs.event(log, logging.INFO, "retrain deferred: too soon after the last run", trigger=trigger,
                       new_objects=len(new), retry_after_s=round(wait, 1))
            raise RetryLater(f"last run started {since_last:.1f} s ago; next allowed in {wait:.1f} s")
        taken = lease.acquire(self.models_bucket, objects.RETRAIN_LEASE_OBJECT, self.settings.retrain_lease_s, self._clock)
        if isinstance(taken, lease.Busy):
            logs.event(log, logging.INFO, "retrain deferred: a run is in progress", trigger=trigger, new_objects=len(new))
            raise RetryLater(f"a training run holds the lease until {taken.expires_at:.0f}")
        try:
            return self._run_under_lease(trigger, taken)
        finally:
            lease.release(self.models_bucket, taken)

    def _run_under_lease(self, trigger: str, held: lease.Lease) -> RunResult:
        started = self._clock()
        # Re-read under the lease: another run may have finished between our checks and the lease.
        state_found = gcs.read_json(self.models_bucket, objects.RETRAIN_STATE_OBJECT)
        state, state_generation = state_found if state_found else ({}, 0)
        if started - float(state.get("last_started_at", 0)) < self.settings.retrain_min_interval_s:
            raise RetryLater("another run started meanwhile")
        snapshot = training_store.list_objects(self.data_bucket)
        state_generation = self._write_state(
            {**state, "last_started_at": started, "last_trigger": trigger}, state_generation
        )
        rows = training_store.load(self.data_bucket, snapshot)
        holdout = training_store.read_holdout(self.data_bucket)
        if holdout is None:
            items = [item for item in rows.items if not splits.in_evaluation_slice(item.id)]
            evaluation_source = f"evaluation slice kept out of training ({splits.EVALUATION_SLICE_RULE})"
        else:
            holdout_ids = {item.id for item in holdout.items}
            items = [item for item in rows.items if item.id not in holdout_ids]
            evaluation_source = training_store.holdout_uri(self.data_bucket)

        result: RunResult
        try:
            if len(items) < self.settings.retrain_min_rows:
                raise TrainingDataError(f"{len(items)} valid rows, fewer than SAIKIKA_RETRAIN_MIN_ROWS={self.settings.retrain_min_rows}")
            trained = train(items)
        except TrainingDataError as exc:
            result = RunResult("skipped", str(exc))
        else:
            version = self._write_candidate(trained, snapshot, rows, evaluation_source, trigger, started)
            result = RunResult("trained", f"trained on {len(items)} rows", version)

        run_record = {
            "status": result.status, "reason": result.reason, "version": result.version, "trigger": trigger,
            "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
            "seconds": round(self._clock() - started, 2), "objects": [o.to_json() for o in snapshot],
            "rows_valid": len(rows.items), "rows_invalid": len(rows.invalid), "invalid_examples": rows.invalid[:20],
        }
        gcs.create_json(self.models_bucket, objects.retrain_run(datetime.fromtimestamp(started, timezone.utc)), run_record)
        self._write_state({**state, "last_started_at": started, "last_trigger": trigger,
                           "objects": {o.name: o.generation for o in snapshot}, "last_run": run_record},
                          state_generation)
        logs.event(log, logging.INFO if result.status == "trained" else logging.WARNING, f"retrain {result.status}",
                   trigger=trigger, reason=result.reason, model_version=result.version, objects=len(snapshot),
                   rows_valid=len(rows.items), rows_invalid=len(rows.invalid), seconds=run_record["seconds"])
        return result

    def _write_state(self, state: dict, generation: int) -> int:
        written = gcs.write_if_generation(self.models_bucket, objects.RETRAIN_STATE_OBJECT, gcs.to_json(state),
                                          gcs.JSON, generation)
        if written is None:
            # Only the lease holder writes the state: a changed generation means the lease was lost.
            raise RetryLater(f"{objects.RETRAIN_STATE_OBJECT} changed under the lease; the run is abandoned")
        return written

    def _write_candidate(self, trained, snapshot, rows, evaluation_source: str, trigger: str, started: float) -> str:
        files = serialize(trained, extra={
            "training_objects": [o.to_json() for o in snapshot],
            "rows_invalid": len(rows.invalid),
            "evaluation_source": evaluation_source,
            "trigger": trigger,
            "training_seconds": round(self._clock() - started, 2),
            "report": f"{objects.REPORT_FOLDER}index.html",
        })
        pages = report.build(files.metadata["version"], trained.tuning_scores, trained.tuning_truth,
                             trained.thresholds, trained.labels)
        content_types = {"html": "text/html", "png": "image/png", "json": "application/json"}
        extra = {f"{objects.REPORT_FOLDER}{name}": (content, content_types[name.rsplit(".", 1)[1]]) for name, content in pages.items()}
        return registry.push(self.models_bucket, *files, extra_files=extra)
