"""Retraining: pending work recorded per data event, trained by a scheduled tick, one run at a time.

- A data event (an object under training/) is acknowledged once a small marker for it is written under
  `retrain/pending/` (create-only: a redelivery writes nothing new). Nothing waits on Pub/Sub redelivery.
- A tick (Cloud Scheduler publishing to retrain-requests every minute; the local stack runs the same tick), a
  data event, or a request asks `saikika.core.retraining.due` whether a run is due, from the pending markers and
  the state alone (a listing that grows with new work, not with history). Waiting is an answer: the event is
  acknowledged and the next tick looks again. A run that is due takes the lease, or waits if another holds it.
- A run is a short sequence of steps (`Retrainer.run`): compact the feedback into day shards and take a snapshot
  (counts and a digest); then either push nothing (the same data as a version already trained), hand the run to a
  training job (more than SAIKIKA_TRAIN_JOB_BYTES of data, unless it is the job), or train the newest row per
  item id (`saikika.model.training.train_from`: in memory or streamed). The candidate's metadata.json (written
  last, the commit marker promote reacts to) carries the data's digest and newest event time. Every run, trained
  or not, is recorded with its reason; its pending markers are then consumed, so a run that failed is not retried
  on the same data until new data or a forced request arrives, and a run that crashed is given up after
  MAX_ATTEMPTS.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from saikika.cloud import champion_cache, drift, gcs, health, launchers, lease, registry, training_store
from saikika.cloud.retrain_state import RetrainStore
from saikika.core import jsonl, logs, objects, splits
from saikika.core.errors import ConfigError, TrainingDataError, TransientError
from saikika.core.events import ObjectEvent, PubSubMessage, parse_rfc3339
from saikika.core.items import Item
from saikika.core.live_quality import DegradedRule, LiveQuality, Window, label_matrices, measure
from saikika.core.retraining import (
    Action,
    Attempt,
    Decision,
    JobInFlight,
    Pending,
    Reason,
    RetrainState,
    RetryLater,
    RunRecord,
    RunResult,
    RunStatus,
    TrainedMarker,
    due,
    iso,
)
from saikika.core.rows import TrainingRow
from saikika.core.settings import Settings
from saikika.model import report
from saikika.model.label_model import LabelModel
from saikika.model.training import DEFAULT_CONFIG, LabelPolicy, TrainedModel, TrainingConfig, serialize, train_from

__all__ = ["Retrainer", "RetryLater", "RunResult", "RunStatus", "Pending", "Run"]

log = logging.getLogger("saikika.retrain")

# How long a training job waits for the lease its launching function is about to release.
JOB_LEASE_WAIT_S = 120.0
# A run that started on a set of pending work and never finished (a crash, an instance killed for memory) is
# retried this many times, then recorded as failed and its work consumed.
MAX_ATTEMPTS = 3
# Feedback rows scored per call of the champion's scorer when measuring live quality: memory holds one chunk's texts.
SCORE_CHUNK = 1_000


@dataclass(frozen=True)
class Run:
    """One run under the lease: what it was given, and the state it wrote when it began."""

    trigger: str
    pending: list[Pending]
    started: float
    state: RetrainState  # as this run wrote it when it began
    generation: int  # of retrain/state.json as this run last wrote it
    attempt: int
    hand_off_above: int | None  # bytes of training data above which a training job takes the run; None: never
    job_run_id: str | None = None  # the training job's run id, when a job runs it

    @property
    def forced(self) -> bool:
        return any(p.force for p in self.pending)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: its answer, what it knew of the data, and the run as it stands (its state generation)."""

    run: Run
    result: RunResult
    training_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingRows:
    """The rows a run trains on: the newest row per item id, less the rows evaluation keeps out."""

    winners: training_store.Winners
    items: Callable[[], Iterator[Item]]  # reads them again for every pass
    evaluation_source: str

    def summary(self) -> dict:
        w = self.winners
        return {
            "rows_valid": w.rows_valid,
            "rows_invalid": w.rows_invalid,
            "rows_newest_per_item": w.rows,
            "invalid_examples": w.invalid_examples,
            "newest_event_time": iso(w.newest_event_time),
        }


class _GaveUp(Exception):
    pass


class Retrainer:
    """The triggers (a data event, a request, the tick), the rule and the lease; the run itself is `RunSteps`."""

    def __init__(
        self,
        settings: Settings,
        client: gcs.Client | None = None,
        clock: Callable[[], float] = time.time,
        launcher: launchers.Launcher | None = None,
    ):
        self.settings = settings
        client = client or gcs.client(settings.project)
        self.client = client
        self.data_bucket = client.bucket(settings.data_bucket)
        self.models_bucket = client.bucket(settings.models_bucket)
        self.store = RetrainStore(self.models_bucket)
        self.steps = RunSteps(settings, self.data_bucket, self.store, clock, launcher)
        self._clock = clock

    # ---- triggers ---------------------------------------------------------------------------
    def on_object(self, event: ObjectEvent) -> RunResult:
        if (
            event.bucket != self.settings.data_bucket
            or not objects.is_training_object(event.name)
            or event.event_type != "OBJECT_FINALIZE"
        ):
            logs.event(log, logging.DEBUG, "event ignored: not training data", bucket=event.bucket, object=event.name)
            return RunResult(RunStatus.IGNORED, f"gs://{event.bucket}/{event.name} is not training data")
        blob = self.data_bucket.get_blob(event.name, generation=event.generation)
        if blob is None:
            return RunResult(RunStatus.IGNORED, f"gs://{event.bucket}/{event.name}#{event.generation} is gone")
        generation = int(blob.generation)
        updated = blob.updated or datetime.fromtimestamp(self._clock(), UTC)
        created = self.store.add_object(event.name, generation, updated, iso(self._clock()))
        message = "training data pending" if created else "training data already pending"
        logs.event(log, logging.INFO, message, object=event.name, generation=generation)
        return self.tick(trigger=f"gs://{event.bucket}/{event.name}#{generation}")

    def on_request(self, message: PubSubMessage) -> RunResult:
        reason, force = _request(message)
        if force:
            self.store.add_request(message.id, message.publish_time, reason, iso(self._clock()))
        try:
            return self.tick(trigger=f"retrain-requests message {message.id}: {reason}")
        finally:
            self.monitor()  # after the decision (and any run): every scheduler minute, the loop's health

    def monitor(self) -> None:
        """The tick's monitoring steps: the day's label drift (when due), then the loop's health, which reports it.
        Neither fails the tick: a failure is one line with its reason (and an object left as it was says by its
        `computed_at` / `checked_at` how old it is)."""
        for step, failed in ((drift.update, "label drift not computed"), (health.update, "loop health not computed")):
            try:
                step(self.settings, self.client, self._clock())
            except Exception as exc:  # noqa: BLE001  (monitoring must not fail or retry the retrain decision)
                logs.event(log, logging.ERROR, failed, reason=f"{type(exc).__name__}: {exc}")

    # ---- is a run due? ------------------------------------------------------------------------
    def pending(self) -> list[Pending]:
        return self.store.pending()

    def decide(self, pending: list[Pending], state: RetrainState) -> Decision:
        s = self.settings
        return due(pending, state, self._clock(), s.retrain_settle_s, s.retrain_min_interval_s)

    def tick(self, trigger: str) -> RunResult:
        """The function's run: the rule, then the lease, then (the rule asked again under it) the steps."""
        pending, state = self.pending(), self.store.state()[0]
        decision = self.decide(pending, state)
        if decision.action is not Action.RUN:
            return _not_now(trigger, decision, pending, job_id=state.job.job_id if state.job else None)
        taken = lease.acquire(
            self.models_bucket, objects.RETRAIN_LEASE_OBJECT, self.settings.retrain_lease_s, self._clock
        )
        if isinstance(taken, lease.Busy):
            return _deferred(trigger, "a run holds the lease", pending)
        try:
            state, generation = self.store.state()
            decision = self.decide(pending, state)  # another run may have started between the look and the lease
            if decision.action is not Action.RUN:
                return _deferred(trigger, f"another run started meanwhile: {decision.detail}", pending)
            run = self.steps.begin(trigger, pending, state, generation, self.settings.train_job_bytes, None)
            return self.steps.run(run)
        finally:
            lease.release(self.models_bucket, taken)

    # ---- the training job --------------------------------------------------------------------
    def run_job(self, run_id: str, trigger: str, force: bool) -> RunResult:  # noqa: ARG002  (the markers say)
        """The training job's entry point: the same steps, in a process with the time and memory it needs, on the
        work the function handed it, never handed off again. The lease lasts as long as a job may."""
        job = self.store.state()[0].job
        if job is None or job.run_id != run_id:
            in_flight = job.run_id if job else None
            message = "training job is not the one in flight; nothing to do"
            logs.event(log, logging.WARNING, message, run_id=run_id, in_flight=in_flight)
            return RunResult(RunStatus.IGNORED, f"run {run_id} is not the job in flight")
        pending = [p for p in self.pending() if p.name in set(job.pending)]
        taken = self._wait_for_lease(run_id)
        try:
            state, generation = self.store.state()
            run = self.steps.begin(f"{trigger} (training job {run_id})", pending, state, generation, None, run_id)
            return self.steps.run(run)
        except BaseException:
            self.store.replace_job(run_id, None)  # the work stays pending; the next tick runs it (attempts count)
            raise
        finally:
            lease.release(self.models_bucket, taken)

    def _wait_for_lease(self, run_id: str) -> lease.Lease:
        """The function that launched this job may still be releasing the lease: wait for it a while."""
        deadline = time.monotonic() + JOB_LEASE_WAIT_S
        duration = self.settings.training_job_timeout_s
        while isinstance(
            taken := lease.acquire(self.models_bucket, objects.RETRAIN_LEASE_OBJECT, duration, self._clock), lease.Busy
        ):
            if time.monotonic() > deadline:
                self.store.replace_job(run_id, None)
                raise RetryLater(f"the lease stayed held for {JOB_LEASE_WAIT_S:.0f} s")
            time.sleep(2)  # a lease in another process: nothing to await but its release
        return taken


class RunSteps:
    """A run's steps, in order: `begin` (the start and its attempt counted), then `run`: `_snapshot` (compaction,
    the data's digest), `_unchanged` (trained on already?), `_hand_off` (too big for a function),
    `LiveQualityStep` (the champion tested on the feedback it never trained on), `CandidateTrainer.train`,
    `_finish` (the run recorded, its work consumed)."""

    def __init__(
        self,
        settings: Settings,
        data_bucket: gcs.Bucket,
        store: RetrainStore,
        clock: Callable[[], float],
        launcher: launchers.Launcher | None,
    ):
        self.settings = settings
        self.data_bucket = data_bucket
        self.store = store
        self._clock = clock
        self._launcher = launcher
        self._live_quality = LiveQualityStep(settings, data_bucket, store.bucket, clock)
        self._trainer = CandidateTrainer(settings, data_bucket, store.bucket, clock)

    def begin(
        self,
        trigger: str,
        pending: list[Pending],
        state: RetrainState,
        generation: int,
        hand_off_above: int | None,
        job_run_id: str | None,
    ) -> Run:
        """Record the run's start and its attempt on this work (a crash leaves it counted)."""
        started, work = self._clock(), _work_digest(pending)
        earlier = state.attempt
        number = earlier.number + 1 if earlier is not None and earlier.work == work else 1
        begun = replace(state, last_started_at=started, last_trigger=trigger, attempt=Attempt(work, number, started))
        generation = self.store.write_state(begun, generation)
        return Run(trigger, pending, started, begun, generation, number, hand_off_above, job_run_id)

    def run(self, run: Run) -> RunResult:
        """The steps; each failure is an answer recorded with its reason, except a transient one (raised: the work
        stays pending and the next tick tries again, counted as an attempt)."""
        try:
            outcome = self._steps(run)
        except _GaveUp as exc:
            outcome = Outcome(run, RunResult(RunStatus.FAILED, str(exc)))
        except (TransientError, *gcs.TRANSIENT_ERRORS):
            raise
        except Exception as exc:  # noqa: BLE001  (recorded with its reason; never retried on the same data)
            logs.event(log, logging.ERROR, "retrain failed", trigger=run.trigger, error=repr(exc), exc_info=exc)
            outcome = Outcome(run, RunResult(RunStatus.FAILED, f"{type(exc).__name__}: {exc}"))
        if outcome.result.status is not RunStatus.HANDED_OFF:  # a handed-off run is finished by its job
            self._finish(outcome)
        return outcome.result

    def _steps(self, run: Run) -> Outcome:
        if run.attempt > MAX_ATTEMPTS:
            raise _GaveUp(f"{MAX_ATTEMPTS} earlier attempts on this work never finished")
        snap = self._snapshot(run)
        trained_on, trained_generation = self.store.trained(snap.digest)
        if not run.forced and trained_on is not None and trained_on.version:
            return self._unchanged(run, snap, trained_on.version)
        if run.hand_off_above is not None and snap.bytes > run.hand_off_above:
            return self._hand_off(run, snap)
        self._live_quality(run, snap)
        outcome = self._trainer.train(run, snap, self._summary(snap))
        if outcome.result.status is RunStatus.TRAINED:
            # Recorded right after the push: a crash before the run is recorded retrains nothing twice.
            marker = TrainedMarker(snap.digest, outcome.result.version, iso(self._clock()))
            self.store.set_trained(marker, trained_generation)
        return outcome

    def _snapshot(self, run: Run) -> training_store.Snapshot:
        training_store.compact(self.data_bucket, now=run.started)
        return training_store.snapshot(self.data_bucket)

    def _unchanged(self, run: Run, snap: training_store.Snapshot, version: str) -> Outcome:
        why = f"the training data (digest {snap.digest[:12]}) is what version {version} was trained on: nothing pushed"
        return Outcome(run, RunResult(RunStatus.UP_TO_DATE, why, version), self._summary(snap))

    def _summary(self, snap: training_store.Snapshot) -> dict:
        return snap.summary(self.data_bucket.name)

    def _hand_off(self, run: Run, snap: training_store.Snapshot) -> Outcome:
        """Give the run to a training job: in flight in the state before the launch (however fast the job starts,
        it finds itself there), its job id added after (unless it has finished already)."""
        run_id, now = uuid.uuid4().hex[:12], self._clock()
        in_flight = JobInFlight(
            run_id, None, now, now + self.settings.training_job_timeout_s, tuple(p.name for p in run.pending)
        )
        generation = self.store.write_state(replace(run.state, job=in_flight), run.generation)
        try:
            launcher = self._launcher or launchers.training_from_settings(self.settings)
            job_id = launcher.launch(launchers.TrainingJob(run_id, run.trigger, run.forced))
        except ConfigError as exc:
            why = f"{snap.bytes} bytes of training data need a training job: {exc}"
            return Outcome(replace(run, generation=generation), RunResult(RunStatus.FAILED, why), self._summary(snap))
        except Exception:
            self.store.write_state(run.state, generation)  # not launched: the work stays pending for the next tick
            raise
        self.store.replace_job(run_id, replace(in_flight, job_id=job_id))
        logs.event(
            log,
            logging.INFO,
            "retrain handed to a training job",
            trigger=run.trigger,
            run_id=run_id,
            job_id=job_id,
            bytes=snap.bytes,
            pending=len(run.pending),
        )
        why = f"{snap.bytes} bytes of training data: training job {job_id}"
        return Outcome(run, RunResult(RunStatus.HANDED_OFF, why), self._summary(snap))

    def _finish(self, outcome: Outcome) -> None:
        """Record the run, keep it as the state's last run (the attempt and any job cleared), consume its work."""
        run, result = outcome.run, outcome.result
        record = RunRecord(
            result.status,
            result.reason,
            result.version,
            run.trigger,
            iso(run.started),
            round(self._clock() - run.started, 2),
            len(run.pending),
            outcome.training_data,
            run.job_run_id,
        )
        self.store.add_run(record, run.started)
        self.store.write_state(replace(run.state, last_run=record, attempt=None, job=None), run.generation)
        self.store.consume(run.pending)
        data = outcome.training_data
        logs.event(
            log,
            logging.INFO if result.status in (RunStatus.TRAINED, RunStatus.UP_TO_DATE) else logging.WARNING,
            f"retrain {result.status}",
            status=str(result.status),  # the run-outcome metric's label (terraform/monitoring.tf)
            trigger=run.trigger,
            reason=result.reason,
            model_version=result.version,
            pending=len(run.pending),
            rows=data.get("rows_newest_per_item"),
            digest=data.get("digest"),
            seconds=record.seconds,
        )


class LiveQualityStep:
    """Test-then-train (`saikika.core.live_quality`): before a run trains, the champion is scored on the snapshot's
    feedback rows newer than its newest training row (`training_store.rows_after`: recent day shards only), and the
    figures are written create-only to `monitoring/quality/` and logged as one `live quality` line. A figure for
    operators: whatever goes wrong here is logged and the run goes on."""

    def __init__(
        self, settings: Settings, data_bucket: gcs.Bucket, models_bucket: gcs.Bucket, clock: Callable[[], float]
    ):
        self.data_bucket = data_bucket
        self.models_bucket = models_bucket
        self._clock = clock
        self._rule = DegradedRule(settings.live_quality_min_rows, settings.live_f1_floor, settings.live_f1_margin)

    def __call__(self, run: Run, snap: training_store.Snapshot) -> LiveQuality | None:
        try:
            return self._measure(run, snap)
        except Exception as exc:  # noqa: BLE001  (never fails the run: logged with its reason)
            reason = f"{type(exc).__name__}: {exc}"
            logs.event(log, logging.WARNING, "live quality not computed", trigger=run.trigger, reason=reason)
            return None

    def _measure(self, run: Run, snap: training_store.Snapshot) -> LiveQuality | None:
        started = time.perf_counter()
        champion = registry.read_champion(self.models_bucket)
        metadata = registry.read_metadata(self.models_bucket, champion.version) if champion else None
        if champion is None or metadata is None:
            logs.event(log, logging.DEBUG, "live quality: no champion to score", trigger=run.trigger)
            return None
        trained_until = _trained_until(metadata)
        rows = training_store.rows_after(self.data_bucket, snap, trained_until)
        first = list(islice(rows, SCORE_CHUNK))
        if not first:
            message = "live quality: no feedback newer than the champion's training"
            logs.event(log, logging.DEBUG, message, trigger=run.trigger, champion_version=champion.version)
            return None
        model = champion_cache.load_version(
            self.models_bucket, champion.version, champion.inference_sha256, metadata=metadata
        )
        truth, predicted, times = _score(model, first, rows)
        window = Window(
            champion.version,
            iso(run.started),
            iso(self._clock()),
            iso(min(times)),
            iso(max(times)),
            iso(trained_until),
            (metadata.get("metrics") or {}).get("micro_f1"),
        )
        quality = measure(*label_matrices(truth, predicted), window, self._rule)
        name = objects.live_quality(datetime.fromtimestamp(run.started, UTC), champion.version)
        gcs.create_json(self.models_bucket, name, quality.to_json())
        level = logging.WARNING if quality.degraded else logging.INFO
        seconds = round(time.perf_counter() - started, 3)
        logs.event(
            log, level, "live quality", trigger=run.trigger, object=name, seconds=seconds, **quality.log_fields()
        )
        return quality


def _trained_until(metadata: Mapping[str, Any]) -> float:
    """Epoch seconds of a version's newest training row; a version pushed by hand may not say: its creation."""
    raw = (metadata.get("training_data") or {}).get("newest_event_time") or metadata.get("created_at")
    if not raw:
        raise ValueError(f"metadata.json of {metadata.get('version')} names no newest training row nor created_at")
    return parse_rfc3339(raw).timestamp()


def _score(
    model: LabelModel, first: list[TrainingRow], rest: Iterator[TrainingRow]
) -> tuple[list[tuple[str, ...]], list[list[str]], list[float]]:
    """(confirmed labels, the labels the model serves, event time) of every row, predicted a chunk at a time."""
    truth: list[tuple[str, ...]] = []
    predicted: list[list[str]] = []
    times: list[float] = []
    chunk = first
    while chunk:
        predicted += [p.labels for p in model.predict([row.item for row in chunk])]
        truth += [tuple(row.item.labels or ()) for row in chunk]
        times += [row.event_time for row in chunk]
        chunk = list(islice(rest, SCORE_CHUNK))
    return truth, predicted, times


class CandidateTrainer:
    """The training step: the rows a run trains on, the label policy and configuration, the fit and the push."""

    def __init__(
        self, settings: Settings, data_bucket: gcs.Bucket, models_bucket: gcs.Bucket, clock: Callable[[], float]
    ):
        self.settings = settings
        self.data_bucket = data_bucket
        self.models_bucket = models_bucket
        self._clock = clock

    def train(self, run: Run, snap: training_store.Snapshot, summary: Mapping[str, Any]) -> Outcome:
        rows = self._training_rows(snap)
        summary = {**summary, **rows.summary()}
        s = self.settings
        policy = LabelPolicy(s.max_labels, s.new_label_min_support, self._champion_labels())
        try:
            result = train_from(
                rows.items,
                s.train_in_memory_rows,
                rows=rows.winners.rows,
                min_rows=s.retrain_min_rows,
                config=self._training_config(),
                policy=policy,
            )
        except TrainingDataError as exc:  # the rows cannot train a model: recorded, with what the rows were
            return Outcome(run, RunResult(RunStatus.SKIPPED, str(exc)), summary)
        summary["training_mode"] = str(result.mode)
        version = self._push(result.model, summary, rows.evaluation_source, run)
        why = f"trained on {result.model.rows_used} rows ({result.mode})"
        return Outcome(run, RunResult(RunStatus.TRAINED, why, version), summary)

    def _training_rows(self, snap: training_store.Snapshot) -> TrainingRows:
        """The newest row per item id, less the trusted holdout's items (or, without one, the evaluation slice)."""
        winners = training_store.newest_per_item(self.data_bucket, snap)
        holdout = training_store.read_holdout(self.data_bucket)
        if holdout is None:
            held_out = splits.in_evaluation_slice
            source = f"evaluation slice kept out of training ({splits.EVALUATION_SLICE_RULE})"
        else:
            holdout_ids = frozenset(item.id for item in holdout.items)
            held_out = holdout_ids.__contains__
            source = training_store.holdout_uri(self.data_bucket)

        def items() -> Iterator[Item]:
            winning = training_store.iter_winning_items(self.data_bucket, snap, winners)
            return (item for item in winning if not held_out(item.id))

        return TrainingRows(winners, items, source)

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

    def _push(self, trained: TrainedModel, summary: Mapping[str, Any], evaluation_source: str, run: Run) -> str:
        """The candidate's files and its report pages; metadata.json last (the commit marker promote reacts to)."""
        files = serialize(
            trained,
            extra={
                "training_data": dict(summary),
                "evaluation_source": evaluation_source,
                "trigger": run.trigger,
                "training_seconds": round(self._clock() - run.started, 2),
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


def _request(message: PubSubMessage) -> tuple[str, bool]:
    """(reason, force) of a retrain request: any body is a request; only JSON true forces a run (the string
    "false" is not a request to retrain regardless)."""
    try:
        body = jsonl.loads(message.data or b"{}")
    except (jsonl.NotJson, UnicodeDecodeError):
        body = {"reason": message.data.decode("utf-8", "replace")}
    body = body if isinstance(body, dict) else {"reason": str(body)}
    force = body.get("force", False)
    if not isinstance(force, bool):
        logs.event(
            log,
            logging.WARNING,
            "retrain request: 'force' is not true or false; not forcing",
            message_id=message.id,
            force=repr(force),
        )
        force = False
    return str(body.get("reason") or "retrain request"), force


def _not_now(trigger: str, decision: Decision, pending: list[Pending], job_id: str | None) -> RunResult:
    if decision.action is Action.NOTHING:
        logs.event(log, logging.INFO, "retrain not needed: nothing pending", trigger=trigger)
        return RunResult(RunStatus.UP_TO_DATE, decision.detail)
    fields = {"job_id": job_id} if decision.reason is Reason.JOB_IN_FLIGHT else {}
    return _deferred(trigger, decision.detail, pending, **fields)


def _deferred(trigger: str, why: str, pending: list[Pending], **fields: Any) -> RunResult:
    logs.event(log, logging.INFO, f"retrain deferred: {why}", trigger=trigger, pending=len(pending), **fields)
    return RunResult(RunStatus.DEFERRED, why)


def _work_digest(pending: list[Pending]) -> str:
    return hashlib.sha256("\n".join(sorted(p.name for p in pending)).encode()).hexdigest()[:16]
