"""Retraining: pending work recorded per data event, trained by a scheduled tick, one run at a time.

- A data event (an object under training/) is acknowledged once a small marker for it is written under
  `retrain/pending/` (create-only: a redelivery writes nothing new). Nothing waits on Pub/Sub redelivery.
- A tick (Cloud Scheduler publishing to retrain-requests every minute; the local stack runs the same tick), a
  data event, or a request decides from the pending markers alone (a listing that grows with new work, not with
  history) whether a run is due: nothing pending (and no forced request) → up to date; the newest pending object
  younger than SAIKIKA_RETRAIN_SETTLE_S while the oldest is younger than SAIKIKA_RETRAIN_MIN_INTERVAL_S → wait
  (so a burst becomes one run and a steady trickle cannot starve training); a run started less than
  SAIKIKA_RETRAIN_MIN_INTERVAL_S ago, a training job in flight, or the lease held → wait. Waiting is an answer:
  the event is acknowledged and the next tick looks again.
- A run (under the lease): compact the feedback into day shards, take a snapshot (counts and a digest), and
  either push nothing (the same data as a version already trained), hand the run to a training job (more than
  SAIKIKA_TRAIN_JOB_BYTES of data), or train: newest row per item id, in memory up to SAIKIKA_TRAIN_IN_MEMORY_ROWS
  rows, else streamed. The candidate's metadata.json (written last, the commit marker promote reacts to) carries
  the data's digest and newest event time. Every run, trained or not, is recorded with its reason; its pending
  markers are then consumed, so a run that failed is not retried on the same data until new data or a forced
  request arrives, and a run that crashed is given up after MAX_ATTEMPTS.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from google.api_core import exceptions as gexc
from google.cloud import storage

from saikika.cloud import gcs, launchers, lease, registry, training_store
from saikika.core import jsonl, logs, objects, splits
from saikika.core.errors import ConfigError, TransientError
from saikika.core.events import ObjectEvent, PubSubMessage
from saikika.core.settings import Settings
from saikika.model import report
from saikika.model.training import (
    DEFAULT_CONFIG,
    LabelPolicy,
    TrainingConfig,
    TrainingDataError,
    serialize,
    train,
    train_streaming,
)

log = logging.getLogger("saikika.retrain")

# How long a training job waits for the lease its launching function is about to release.
JOB_LEASE_WAIT_S = 120.0
# A run that started on a set of pending work and never finished (a crash, an instance killed for memory) is
# retried this many times, then recorded as failed and its work consumed.
MAX_ATTEMPTS = 3
STREAM_BATCH_ROWS = 5_000


class RetryLater(TransientError):
    """The state changed under the lease: this attempt is abandoned and the work stays pending."""


@dataclass(frozen=True)
class RunResult:
    status: str  # "trained", "skipped", "failed", "up-to-date", "deferred", "handed-off", "ignored"
    reason: str
    version: str | None = None


@dataclass(frozen=True)
class Pending:
    name: str  # the marker
    generation: int
    updated: float  # when its work arrived: the training object's write time, or the request's publish time
    force: bool


class Retrainer:
    def __init__(
        self,
        settings: Settings,
        client: storage.Client | None = None,
        clock=time.time,
        launcher: launchers.Launcher | None = None,
    ):
        self.settings = settings
        client = client or gcs.client(settings.project)
        self.data_bucket = client.bucket(settings.data_bucket)
        self.models_bucket = client.bucket(settings.models_bucket)
        self._client = client
        self._clock = clock
        self._launcher = launcher

    # ---- triggers ---------------------------------------------------------------------------
    def on_object(self, event: ObjectEvent) -> RunResult:
        if (
            event.bucket != self.settings.data_bucket
            or not objects.is_training_object(event.name)
            or event.event_type != "OBJECT_FINALIZE"
        ):
            logs.event(log, logging.DEBUG, "event ignored: not training data", bucket=event.bucket, object=event.name)
            return RunResult("ignored", f"gs://{event.bucket}/{event.name} is not training data")
        blob = self.data_bucket.get_blob(event.name, generation=event.generation)
        if blob is None:
            return RunResult("ignored", f"gs://{event.bucket}/{event.name}#{event.generation} is gone")
        updated = blob.updated or datetime.fromtimestamp(self._clock(), UTC)
        created = gcs.create_json(
            self.models_bucket,
            objects.retrain_pending(event.name, int(blob.generation), updated),
            {"object": event.name, "generation": int(blob.generation), "recorded_at": _iso(self._clock())},
        )
        logs.event(
            log,
            logging.INFO,
            "training data pending" if created else "training data already pending",
            object=event.name,
            generation=int(blob.generation),
        )
        return self.tick(trigger=f"gs://{event.bucket}/{event.name}#{blob.generation}")

    def on_request(self, message: PubSubMessage) -> RunResult:
        try:
            body = jsonl.loads(message.data or b"{}")
        except (jsonl.NotJson, UnicodeDecodeError):
            body = {"reason": message.data.decode("utf-8", "replace")}
        body = body if isinstance(body, dict) else {"reason": str(body)}
        reason = str(body.get("reason") or "retrain request")
        force = body.get("force", False)
        if not isinstance(force, bool):
            # Only JSON true forces a run: the string "false" is not a request to retrain regardless.
            logs.event(
                log,
                logging.WARNING,
                "retrain request: 'force' is not true or false; not forcing",
                message_id=message.id,
                force=repr(force),
            )
            force = False
        trigger = f"retrain-requests message {message.id}: {reason}"
        if force:
            # Kept as pending work, so a forced request waiting on the lease or the interval is not lost.
            gcs.create_json(
                self.models_bucket,
                objects.retrain_request(message.id, message.publish_time),
                {"request": message.id, "force": True, "reason": reason, "recorded_at": _iso(self._clock())},
            )
        return self.tick(trigger=trigger)

    # ---- is a run due? ------------------------------------------------------------------------
    def pending(self) -> list[Pending]:
        """One listing: each marker's name says when its work arrived and whether it is a forced request."""
        found = []
        for blob in self._client.list_blobs(self.models_bucket, prefix=objects.RETRAIN_PENDING_PREFIX):
            work = objects.pending_work(blob.name)
            if work is not None:
                found.append(Pending(blob.name, int(blob.generation), work[0], work[1]))
        return found

    def tick(self, trigger: str) -> RunResult:
        pending = self.pending()
        state = self._state()[0]
        now = self._clock()
        job = state.get("job")
        if job and now < float(job.get("deadline", 0)):
            return self._deferred(trigger, "a training job is running", pending, job_id=job.get("job_id"))
        if not pending:
            logs.event(log, logging.INFO, "retrain not needed: nothing pending", trigger=trigger)
            return RunResult("up-to-date", "no training data or request is pending")
        forced = any(p.force for p in pending)
        newest_age = now - max(p.updated for p in pending)
        oldest_age = now - min(p.updated for p in pending)
        if (
            not forced
            and newest_age < self.settings.retrain_settle_s
            and oldest_age < self.settings.retrain_min_interval_s
        ):
            return self._deferred(trigger, f"new data still arriving (newest {newest_age:.1f} s old)", pending)
        since_last = now - float(state.get("last_started_at", 0))
        if since_last < self.settings.retrain_min_interval_s:
            return self._deferred(trigger, f"the last run started {since_last:.1f} s ago", pending)
        taken = lease.acquire(
            self.models_bucket, objects.RETRAIN_LEASE_OBJECT, self.settings.retrain_lease_s, self._clock
        )
        if isinstance(taken, lease.Busy):
            return self._deferred(trigger, "a run holds the lease", pending)
        try:
            return self._run_under_lease(trigger, pending, in_job=False)
        finally:
            lease.release(self.models_bucket, taken)

    def _deferred(self, trigger: str, why: str, pending: list[Pending], **fields) -> RunResult:
        logs.event(log, logging.INFO, f"retrain deferred: {why}", trigger=trigger, pending=len(pending), **fields)
        return RunResult("deferred", why)

    # ---- the run ----------------------------------------------------------------------------
    def _run_under_lease(
        self, trigger: str, pending: list[Pending], in_job: bool, run_id: str | None = None
    ) -> RunResult:
        started = self._clock()
        state, state_generation = self._state()
        if not in_job and started - float(state.get("last_started_at", 0)) < self.settings.retrain_min_interval_s:
            return self._deferred(trigger, "another run started meanwhile", pending)
        work = _work_digest(pending)
        attempt = state["attempt"]["number"] + 1 if (state.get("attempt") or {}).get("work") == work else 1
        state = {
            **state,
            "last_started_at": started,
            "last_trigger": trigger,
            "attempt": {"work": work, "number": attempt, "started_at": started},
        }
        state_generation = self._write_state(state, state_generation)
        forced = any(p.force for p in pending)
        summary: dict = {}
        try:
            if attempt > MAX_ATTEMPTS:
                raise _GaveUp(f"{MAX_ATTEMPTS} earlier attempts on this work never finished")
            training_store.compact(self.data_bucket, now=started)
            snap = training_store.snapshot(self.data_bucket)
            summary = snap.summary(self.data_bucket.name)
            trained_on, trained_generation = gcs.read_json(
                self.models_bucket, objects.retrain_trained(snap.digest)
            ) or ({}, 0)
            earlier = trained_on.get("version")
            if not forced and earlier:
                result = RunResult(
                    "up-to-date",
                    f"the training data (digest {snap.digest[:12]}) is what version "
                    f"{earlier} was trained on: nothing pushed",
                    earlier,
                )
            elif not in_job and snap.bytes > self.settings.train_job_bytes:
                return self._hand_off(trigger, pending, snap, state, state_generation, forced)
            else:
                result = self._train(snap, trigger, started, summary)
                # Recorded right after the push: a crash before the run is recorded retrains nothing twice.
                gcs.write_if_generation(
                    self.models_bucket,
                    objects.retrain_trained(snap.digest),
                    gcs.to_json({"digest": snap.digest, "version": result.version, "trained_at": _iso(self._clock())}),
                    gcs.JSON,
                    trained_generation,
                )
        except _GaveUp as exc:
            result = RunResult("failed", str(exc))
        except TrainingDataError as exc:
            result = RunResult("skipped", str(exc))
        except (TransientError, gexc.ServiceUnavailable, gexc.TooManyRequests, gexc.InternalServerError):
            raise  # the work stays pending; the next tick tries again (counted as an attempt)
        except Exception as exc:  # noqa: BLE001  (recorded with its reason; never retried on the same data)
            logs.event(log, logging.ERROR, "retrain failed", trigger=trigger, error=repr(exc), exc_info=exc)
            result = RunResult("failed", f"{type(exc).__name__}: {exc}")
        self._finish(result, trigger, started, pending, summary, state, state_generation, run_id)
        return result

    def _train(self, snap: training_store.Snapshot, trigger: str, started: float, summary: dict) -> RunResult:
        winners = training_store.newest_per_item(self.data_bucket, snap)
        summary.update(
            rows_valid=winners.rows_valid,
            rows_invalid=winners.rows_invalid,
            rows_newest_per_item=winners.rows,
            invalid_examples=winners.invalid_examples,
            newest_event_time=_iso(winners.newest_event_time),
        )
        holdout = training_store.read_holdout(self.data_bucket)
        if holdout is None:

            def trains_on(item) -> bool:
                return not splits.in_evaluation_slice(item.id)

            evaluation_source = f"evaluation slice kept out of training ({splits.EVALUATION_SLICE_RULE})"
        else:
            holdout_ids = {item.id for item in holdout.items}

            def trains_on(item) -> bool:
                return item.id not in holdout_ids

            evaluation_source = training_store.holdout_uri(self.data_bucket)

        def items() -> Iterator:
            return (
                item for item in training_store.iter_winning_items(self.data_bucket, snap, winners) if trains_on(item)
            )

        policy = LabelPolicy(self.settings.max_labels, self.settings.new_label_min_support, self._champion_labels())
        config = self._training_config()
        if winners.rows <= self.settings.train_in_memory_rows:
            rows = list(items())
            if len(rows) < self.settings.retrain_min_rows:
                raise TrainingDataError(
                    f"{len(rows)} valid rows, fewer than SAIKIKA_RETRAIN_MIN_ROWS={self.settings.retrain_min_rows}"
                )
            trained, mode = train(rows, config=config, policy=policy), "in memory"
        else:
            trained, mode = (
                train_streaming(lambda: _batches(items(), STREAM_BATCH_ROWS), config=config, policy=policy),
                "streamed",
            )
        summary["training_mode"] = mode
        version = self._write_candidate(trained, summary, evaluation_source, trigger, started)
        return RunResult("trained", f"trained on {trained.rows_used} rows ({mode})", version)

    def _training_config(self) -> TrainingConfig:
        """With title word vectors if SAIKIKA_WORD_VECTORS names them (checksum-verified), else the default."""
        if not self.settings.word_vectors:
            return DEFAULT_CONFIG
        return TrainingConfig.with_word_vectors(
            registry.read_word_vectors(
                self.models_bucket, self.settings.word_vectors, self.settings.word_vectors_sha256
            )
        )

    def _champion_labels(self) -> frozenset[str]:
        champion = registry.read_champion(self.models_bucket)
        metadata = registry.read_metadata(self.models_bucket, champion.version) if champion else None
        return frozenset((metadata or {}).get("labels", ()))

    def _hand_off(
        self, trigger: str, pending: list[Pending], snap, state: dict, state_generation: int, forced: bool
    ) -> RunResult:
        run_id = uuid.uuid4().hex[:12]
        job = launchers.TrainingJob(run_id, trigger, forced)
        # In flight before the launch: the job, however fast it starts, finds itself in the state.
        in_flight = {
            "run_id": run_id,
            "job_id": None,
            "launched_at": self._clock(),
            "deadline": self._clock() + self.settings.training_job_timeout_s,
            "pending": [p.name for p in pending],
        }
        state_generation = self._write_state({**state, "job": in_flight}, state_generation)
        try:
            job_id = (self._launcher or launchers.training_from_settings(self.settings)).launch(job)
        except ConfigError as exc:
            result = RunResult("failed", f"{snap.bytes} bytes of training data need a training job: {exc}")
            self._finish(
                result,
                trigger,
                self._clock(),
                pending,
                snap.summary(self.data_bucket.name),
                state,
                state_generation,
                None,
            )
            return result
        except Exception:
            self._write_state(state, state_generation)  # not launched: the work stays pending for the next tick
            raise
        self._replace_job(run_id, {**in_flight, "job_id": job_id})  # unless the job has finished already
        logs.event(
            log,
            logging.INFO,
            "retrain handed to a training job",
            trigger=trigger,
            run_id=run_id,
            job_id=job_id,
            bytes=snap.bytes,
            pending=len(pending),
        )
        return RunResult("handed-off", f"{snap.bytes} bytes of training data: training job {job_id}")

    def run_job(self, run_id: str, trigger: str, force: bool) -> RunResult:  # noqa: ARG002
        """The training job's entry point: the same run, in a process with the time and memory it needs. The
        lease lasts as long as a job may."""
        state = self._state()[0]
        job = state.get("job") or {}
        if job.get("run_id") != run_id:
            logs.event(
                log,
                logging.WARNING,
                "training job is not the one in flight; nothing to do",
                run_id=run_id,
                in_flight=job.get("run_id"),
            )
            return RunResult("ignored", f"run {run_id} is not the job in flight")
        pending = [p for p in self.pending() if p.name in set(job.get("pending", []))]
        # The function that launched this job may still be releasing the lease: wait for it a while.
        deadline = time.monotonic() + JOB_LEASE_WAIT_S
        while isinstance(
            taken := lease.acquire(
                self.models_bucket, objects.RETRAIN_LEASE_OBJECT, self.settings.training_job_timeout_s, self._clock
            ),
            lease.Busy,
        ):
            if time.monotonic() > deadline:
                self._replace_job(run_id, None)
                raise RetryLater(f"the lease stayed held for {JOB_LEASE_WAIT_S:.0f} s")
            time.sleep(2)
        try:
            return self._run_under_lease(f"{trigger} (training job {run_id})", pending, in_job=True, run_id=run_id)
        except BaseException:
            self._replace_job(
                run_id, None
            )  # the work stays pending; the next tick runs it again (attempts are counted)
            raise
        finally:
            lease.release(self.models_bucket, taken)

    def _replace_job(self, run_id: str, job: dict | None) -> None:
        """Set (or, with None, clear) the job in flight, if it is still run `run_id`; a lost race changes nothing."""
        state, generation = self._state()
        if (state.get("job") or {}).get("run_id") == run_id:
            state = {key: value for key, value in state.items() if key != "job"} | ({"job": job} if job else {})
            gcs.write_if_generation(
                self.models_bucket, objects.RETRAIN_STATE_OBJECT, gcs.to_json(state), gcs.JSON, generation
            )

    def _finish(
        self,
        result: RunResult,
        trigger: str,
        started: float,
        pending: list[Pending],
        summary: dict,
        state: dict,
        state_generation: int,
        run_id: str | None,
    ) -> None:
        run_record = {
            "status": result.status,
            "reason": result.reason,
            "version": result.version,
            "trigger": trigger,
            "started_at": _iso(started),
            "seconds": round(self._clock() - started, 2),
            "pending": len(pending),
            "training_data": summary,
            **({"job_run_id": run_id} if run_id else {}),
        }
        gcs.create_json(self.models_bucket, objects.retrain_run(datetime.fromtimestamp(started, UTC)), run_record)
        new_state = {key: value for key, value in state.items() if key not in ("attempt", "job")}
        self._write_state({**new_state, "last_run": run_record}, state_generation)
        for marker in pending:  # consumed: the work is done, or recorded as failed with its reason
            try:
                self.models_bucket.blob(marker.name).delete(if_generation_match=marker.generation)
            except (gexc.NotFound, gexc.PreconditionFailed):
                pass
        logs.event(
            log,
            logging.INFO if result.status in ("trained", "up-to-date") else logging.WARNING,
            f"retrain {result.status}",
            trigger=trigger,
            reason=result.reason,
            model_version=result.version,
            pending=len(pending),
            rows=summary.get("rows_newest_per_item"),
            digest=summary.get("digest"),
            seconds=run_record["seconds"],
        )

    def _state(self) -> tuple[dict, int]:
        found = gcs.read_json(self.models_bucket, objects.RETRAIN_STATE_OBJECT)
        return found if found else ({}, 0)

    def _write_state(self, state: dict, generation: int) -> int:
        written = gcs.write_if_generation(
            self.models_bucket, objects.RETRAIN_STATE_OBJECT, gcs.to_json(state), gcs.JSON, generation
        )
        if written is None:
            # Only the lease holder writes the state: a changed generation means the lease was lost.
            raise RetryLater(f"{objects.RETRAIN_STATE_OBJECT} changed under the lease; the run is abandoned")
        return written

    def _write_candidate(self, trained, summary: dict, evaluation_source: str, trigger: str, started: float) -> str:
        files = serialize(
            trained,
            extra={
                "training_data": summary,
                "evaluation_source": evaluation_source,
                "trigger": trigger,
                "training_seconds": round(self._clock() - started, 2),
                "report": f"{objects.REPORT_FOLDER}index.html",
            },
        )
        pages = report.build(
            files.metadata["version"], trained.tuning_scores, trained.tuning_truth, trained.thresholds, trained.labels
        )
        content_types = {"html": "text/html", "png": "image/png", "json": "application/json"}
        extra = {
            f"{objects.REPORT_FOLDER}{name}": (content, content_types[name.rsplit(".", 1)[1]])
            for name, content in pages.items()
        }
        return registry.push(self.models_bucket, *files, extra_files=extra)


class _GaveUp(Exception):
    pass


def _work_digest(pending: list[Pending]) -> str:
    return hashlib.sha256("\n".join(sorted(p.name for p in pending)).encode()).hexdigest()[:16]


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(items, size)):
        yield batch


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()
