"""Retraining, pure: the rule that says whether a run is due, and the stored objects of the retrain state as
frozen dataclasses (each with its `to_json` / `from_json`, the keys those objects have always had).

The rule reads the pending markers, the state and the time, nothing else, so "is a run due?" costs one listing
and one read whatever the history, and every branch has a row in `tests/unit/test_retraining.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from saikika.core.errors import TransientError


class RetryLater(TransientError):
    """The state changed under the lease: this attempt is abandoned and the work stays pending."""


class RunStatus(StrEnum):
    """What became of a trigger; the values are written to run records and logs."""

    TRAINED = "trained"
    SKIPPED = "skipped"
    FAILED = "failed"
    UP_TO_DATE = "up-to-date"
    DEFERRED = "deferred"
    HANDED_OFF = "handed-off"
    IGNORED = "ignored"


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    reason: str
    version: str | None = None


class Action(StrEnum):
    RUN = "run"
    WAIT = "wait"  # not now: the next tick looks again
    NOTHING = "nothing"  # nothing to do: up to date


class Reason(StrEnum):
    NOTHING_PENDING = "nothing pending"
    JOB_IN_FLIGHT = "a training job in flight"
    STILL_ARRIVING = "data still arriving"
    TOO_RECENT = "last run too recent"
    FORCED = "forced request"
    SETTLED = "data settled"
    WAITED_LONG_ENOUGH = "oldest work waited the min interval"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    detail: str  # the reason with its figures, as logged and answered

    def to_json(self) -> dict:
        return {"action": str(self.action), "reason": str(self.reason), "detail": self.detail}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Decision:
        return cls(Action(value["action"]), Reason(value["reason"]), str(value["detail"]))


@dataclass(frozen=True)
class Pending:
    """One pending marker as listed: its name says when its work arrived and whether it is a forced request."""

    name: str
    generation: int
    updated: float  # when its work arrived: the training object's write time, or the request's publish time
    force: bool


@dataclass(frozen=True)
class Attempt:
    """A run started on this work (a digest of its markers' names): counted, so a run that keeps crashing is
    given up on."""

    work: str
    number: int
    started_at: float

    def to_json(self) -> dict:
        return {"work": self.work, "number": self.number, "started_at": self.started_at}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Attempt:
        return cls(str(value["work"]), int(value["number"]), float(value["started_at"]))


@dataclass(frozen=True)
class JobInFlight:
    run_id: str
    job_id: str | None
    launched_at: float
    deadline: float  # past it, the job is presumed dead and a tick may run the work again
    pending: tuple[str, ...]  # the markers the job trains on

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "job_id": self.job_id,
            "launched_at": self.launched_at,
            "deadline": self.deadline,
            "pending": list(self.pending),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> JobInFlight:
        return cls(
            str(value["run_id"]),
            value.get("job_id"),
            float(value.get("launched_at", 0)),
            float(value.get("deadline", 0)),
            tuple(value.get("pending", ())),
        )


@dataclass(frozen=True)
class RunRecord:
    """What a finished run leaves under retrain/runs/ and as the state's `last_run`."""

    status: RunStatus
    reason: str
    version: str | None
    trigger: str
    started_at: str  # ISO 8601
    seconds: float
    pending: int  # markers the run consumed
    training_data: Mapping[str, Any] = field(default_factory=dict)  # the snapshot's summary and the rows'
    job_run_id: str | None = None  # set when a training job ran it

    def to_json(self) -> dict:
        out = {
            "status": str(self.status),
            "reason": self.reason,
            "version": self.version,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "pending": self.pending,
            "training_data": dict(self.training_data),
        }
        return out | ({"job_run_id": self.job_run_id} if self.job_run_id else {})

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RunRecord:
        return cls(
            RunStatus(value["status"]),
            str(value["reason"]),
            value.get("version"),
            str(value.get("trigger", "")),
            str(value["started_at"]),
            float(value.get("seconds", 0)),
            int(value.get("pending", 0)),
            dict(value.get("training_data") or {}),
            value.get("job_run_id"),
        )


@dataclass(frozen=True)
class RetrainState:
    """retrain/state.json: written only by the lease holder, each write a compare-and-swap on its generation."""

    last_started_at: float | None = None
    last_trigger: str | None = None
    last_run: RunRecord | None = None
    attempt: Attempt | None = None  # a run on this work started and has not finished
    job: JobInFlight | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        if self.last_started_at is not None:
            out["last_started_at"] = self.last_started_at
        if self.last_trigger is not None:
            out["last_trigger"] = self.last_trigger
        for key, value in (("last_run", self.last_run), ("attempt", self.attempt), ("job", self.job)):
            if value is not None:
                out[key] = value.to_json()
        return out

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RetrainState:
        def typed(key: str, kind):
            return kind.from_json(value[key]) if value.get(key) else None

        started = value.get("last_started_at")
        return cls(
            None if started is None else float(started),
            value.get("last_trigger"),
            typed("last_run", RunRecord),
            typed("attempt", Attempt),
            typed("job", JobInFlight),
        )


@dataclass(frozen=True)
class PendingMarker:
    """The body of a pending marker: a training object's generation, or a forced request. Nothing reads it back to
    decide (the name says all the rule needs); it says, to a person listing retrain/pending/, what the work is."""

    recorded_at: str | None
    object: str | None = None
    generation: int | None = None
    request: str | None = None
    reason: str | None = None

    @classmethod
    def for_object(cls, name: str, generation: int, recorded_at: str) -> PendingMarker:
        return cls(recorded_at, object=name, generation=generation)

    @classmethod
    def for_request(cls, message_id: str, reason: str, recorded_at: str) -> PendingMarker:
        return cls(recorded_at, request=message_id, reason=reason)

    def to_json(self) -> dict:
        if self.request is not None:
            return {"request": self.request, "force": True, "reason": self.reason, "recorded_at": self.recorded_at}
        return {"object": self.object, "generation": self.generation, "recorded_at": self.recorded_at}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> PendingMarker:
        if "request" in value:
            return cls.for_request(str(value["request"]), str(value.get("reason", "")), value.get("recorded_at"))
        generation = value.get("generation")
        return cls(value.get("recorded_at"), str(value["object"]), None if generation is None else int(generation))


@dataclass(frozen=True)
class TrainedMarker:
    """retrain/trained/<digest>.json: the version a run on this training data produced."""

    digest: str
    version: str | None
    trained_at: str

    def to_json(self) -> dict:
        return {"digest": self.digest, "version": self.version, "trained_at": self.trained_at}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> TrainedMarker:
        return cls(str(value["digest"]), value.get("version"), str(value.get("trained_at", "")))


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def due(
    pending: Sequence[Pending], state: RetrainState, now: float, settle_s: float, min_interval_s: float
) -> Decision:
    """Whether a run is due, in this order: a training job in flight (until its deadline) → wait; nothing pending →
    nothing to do; the newest work younger than `settle_s` while the oldest is younger than `min_interval_s` →
    wait (a burst becomes one run, a steady trickle cannot starve training; a forced request does not wait for
    quiet); a run started less than `min_interval_s` ago → wait (forced or not); else run."""
    job = state.job
    if job is not None and now < job.deadline:
        return Decision(Action.WAIT, Reason.JOB_IN_FLIGHT, "a training job is running")
    if not pending:
        return Decision(Action.NOTHING, Reason.NOTHING_PENDING, "no training data or request is pending")
    forced = any(p.force for p in pending)
    newest_age = now - max(p.updated for p in pending)
    oldest_age = now - min(p.updated for p in pending)
    settling = newest_age < settle_s
    if not forced and settling and oldest_age < min_interval_s:
        return Decision(Action.WAIT, Reason.STILL_ARRIVING, f"new data still arriving (newest {newest_age:.1f} s old)")
    since_last = now - (state.last_started_at or 0.0)
    if since_last < min_interval_s:
        return Decision(Action.WAIT, Reason.TOO_RECENT, f"the last run started {since_last:.1f} s ago")
    if forced:
        return Decision(Action.RUN, Reason.FORCED, "a forced request is pending")
    if settling:
        return Decision(
            Action.RUN, Reason.WAITED_LONG_ENOUGH, f"the oldest work has waited {oldest_age:.1f} s: no more settling"
        )
    return Decision(Action.RUN, Reason.SETTLED, f"{len(pending)} pending, the newest {newest_age:.1f} s old")
