"""Loop health, pure: the rule that says whether the loop is ok, stalled, degraded or without a champion, from what
the tick gathered (`Observed`), and `monitoring/health.json` as a frozen dataclass (`LoopHealth`).

The counters are kept incrementally: each tick reads only the run records and decision-log entries written after
the cursors the last `LoopHealth` stored (`count_runs`, `count_candidates`), newest first, and stops at the first
success. Nothing here lists or reads history; every branch of `assess` has a row in `tests/unit/test_health.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from saikika.core.decisions import Action as DecisionAction
from saikika.core.decisions import Decision, Outcome
from saikika.core.drift import KEPT_KEYS
from saikika.core.retraining import RunRecord, RunStatus, iso

# A run that produced a version, or found the data already trained on: the loop is moving.
SUCCESSFUL_RUNS = frozenset({RunStatus.TRAINED, RunStatus.UP_TO_DATE})
# What the health keeps of the newest live-quality object (the contract's keys; of today's drift: drift.KEPT_KEYS).
LIVE_QUALITY_KEYS = ("champion_version", "micro_f1", "offline_micro_f1", "rows", "computed_at", "degraded")


class HealthStatus(StrEnum):
    OK = "ok"
    STALLED = "stalled"
    DEGRADED = "degraded"
    NO_CHAMPION = "no-champion"


# The `loop health` line's severity: what an alert matches (docs/monitoring.md).
LOG_LEVELS = {
    HealthStatus.OK: logging.INFO,
    HealthStatus.DEGRADED: logging.WARNING,
    HealthStatus.NO_CHAMPION: logging.WARNING,
    HealthStatus.STALLED: logging.ERROR,
}


@dataclass(frozen=True)
class ChampionHealth:
    version: str
    since: str | None  # when it was promoted (ISO 8601)
    age_s: float | None
    offline_micro_f1: float | None

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "since": self.since,
            "age_s": self.age_s,
            "offline_micro_f1": self.offline_micro_f1,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ChampionHealth:
        return cls(str(value["version"]), value.get("since"), value.get("age_s"), value.get("offline_micro_f1"))


@dataclass(frozen=True)
class LastRun:
    status: str
    reason: str
    started_at: str
    version: str | None

    @classmethod
    def of(cls, record: RunRecord) -> LastRun:
        return cls(str(record.status), record.reason, record.started_at, record.version)

    def to_json(self) -> dict:
        return {"status": self.status, "reason": self.reason, "started_at": self.started_at, "version": self.version}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LastRun:
        return cls(str(value["status"]), str(value.get("reason", "")), str(value["started_at"]), value.get("version"))


@dataclass(frozen=True)
class RunCount:
    """Failed runs in a row up to the run record `cursor` (the newest counted), and the newest successful run."""

    failed: int = 0
    last_success_at: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class CandidateCount:
    """Candidates rejected in a row up to the decision-log entry `cursor` (the newest counted)."""

    rejected: int = 0
    cursor: str | None = None


def count_runs(previous: RunCount, newest_first: Iterable[RunRecord], cursor: str) -> RunCount:
    """The count after the run records written since `previous.cursor` (newest first, up to `cursor`): a successful
    run ends the streak (older records are not read); a failed run adds one; a skipped run (too few rows) neither."""
    failed = 0
    for record in newest_first:
        if record.status in SUCCESSFUL_RUNS:
            return RunCount(failed, record.started_at, cursor)
        failed += record.status is RunStatus.FAILED
    return RunCount(previous.failed + failed, previous.last_success_at, cursor)


def count_candidates(previous: CandidateCount, newest_first: Iterable[Decision], cursor: str) -> CandidateCount:
    """The count after the decision-log entries written since `previous.cursor` (newest first): a promotion (judged,
    by hand, or a rollback: the champion moved) ends the streak; a candidate the promote function rejected adds one;
    a candidate found already champion neither."""
    rejected = 0
    for decision in newest_first:
        if decision.outcome is Outcome.PROMOTED:
            return CandidateCount(rejected, cursor)
        rejected += decision.action is DecisionAction.JUDGE and decision.outcome is Outcome.REJECTED
    return CandidateCount(previous.rejected + rejected, cursor)


@dataclass(frozen=True)
class Observed:
    """What the tick gathered: each figure from one read or one listing (`saikika.cloud.health.observe`)."""

    champion: ChampionHealth | None  # age_s is filled in by `assess`
    last_run: RunRecord | None  # retrain/state.json's
    pending_since: Sequence[float]  # when each pending work arrived (epoch seconds)
    runs: RunCount
    candidates: CandidateCount
    live_quality: Mapping[str, Any] | None  # the newest LiveQuality object's JSON
    drift: Mapping[str, Any] | None  # today's LabelDrift object's JSON
    rejected_inputs_today: int


@dataclass(frozen=True)
class LoopHealth:
    """monitoring/health.json."""

    checked_at: str
    status: HealthStatus
    problems: tuple[str, ...]
    champion: ChampionHealth | None
    last_run: LastRun | None
    last_successful_run_at: str | None
    pending: Mapping[str, Any]  # {"count", "oldest_age_s"}
    consecutive_failed_runs: int
    consecutive_rejected_candidates: int
    last_live_quality: Mapping[str, Any] | None
    drift: Mapping[str, Any] | None
    rejected_inputs_today: int
    cursors: Mapping[str, str | None] = field(default_factory=lambda: {"runs": None, "decisions": None})

    @property
    def runs(self) -> RunCount:
        return RunCount(self.consecutive_failed_runs, self.last_successful_run_at, self.cursors.get("runs"))

    @property
    def candidates(self) -> CandidateCount:
        return CandidateCount(self.consecutive_rejected_candidates, self.cursors.get("decisions"))

    def to_json(self) -> dict:
        return {
            "checked_at": self.checked_at,
            "status": str(self.status),
            "problems": list(self.problems),
            "champion": self.champion.to_json() if self.champion else None,
            "last_run": self.last_run.to_json() if self.last_run else None,
            "last_successful_run_at": self.last_successful_run_at,
            "pending": dict(self.pending),
            "consecutive_failed_runs": self.consecutive_failed_runs,
            "consecutive_rejected_candidates": self.consecutive_rejected_candidates,
            "last_live_quality": None if self.last_live_quality is None else dict(self.last_live_quality),
            "drift": None if self.drift is None else dict(self.drift),
            "rejected_inputs_today": self.rejected_inputs_today,
            "cursors": dict(self.cursors),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LoopHealth:
        def typed(key: str, kind):
            return kind.from_json(value[key]) if value.get(key) else None

        return cls(
            str(value["checked_at"]),
            HealthStatus(value["status"]),
            tuple(value.get("problems", ())),
            typed("champion", ChampionHealth),
            typed("last_run", LastRun),
            value.get("last_successful_run_at"),
            dict(value.get("pending") or {"count": 0, "oldest_age_s": None}),
            int(value.get("consecutive_failed_runs", 0)),
            int(value.get("consecutive_rejected_candidates", 0)),
            value.get("last_live_quality"),
            value.get("drift"),
            int(value.get("rejected_inputs_today", 0)),
            {"runs": None, "decisions": None, **(value.get("cursors") or {})},
        )

    def log_fields(self) -> dict[str, Any]:
        """The `loop health` line's fields (the contract's; alerts match `status`)."""
        quality, drift = self.last_live_quality or {}, self.drift or {}
        return {
            "status": str(self.status),
            "problems": list(self.problems),
            "champion_version": self.champion.version if self.champion else None,
            "champion_age_s": self.champion.age_s if self.champion else None,
            "pending": self.pending.get("count", 0),
            "oldest_pending_age_s": self.pending.get("oldest_age_s"),
            "consecutive_failed_runs": self.consecutive_failed_runs,
            "consecutive_rejected_candidates": self.consecutive_rejected_candidates,
            "live_micro_f1": quality.get("micro_f1"),
            "drift": drift.get("divergence"),
        }


@dataclass(frozen=True)
class Bounds:
    """SAIKIKA_STALL_AFTER_S and SAIKIKA_STALL_FAILED_RUNS."""

    stall_after_s: float
    stall_failed_runs: int


def assess(observed: Observed, now: float, bounds: Bounds) -> LoopHealth:
    """The rule, worst first: **stalled** (pending work older than `stall_after_s` with no successful run since it
    arrived, or `stall_failed_runs` failed runs in a row), **degraded** (the champion's newest live quality is
    degraded, today's label drift is above its bound, or `stall_failed_runs` candidates rejected in a row),
    **no-champion**, else **ok**. `problems` says every one found, in plain words."""
    stalled = _stalled(observed, now, bounds)
    degraded = _degraded(observed, bounds)
    missing = [] if observed.champion else ["no champion: nothing is served until a version is promoted"]
    status = (
        HealthStatus.STALLED
        if stalled
        else HealthStatus.DEGRADED
        if degraded
        else HealthStatus.NO_CHAMPION
        if missing
        else HealthStatus.OK
    )
    return LoopHealth(
        iso(now) or "",
        status,
        tuple(stalled + degraded + missing),
        _champion(observed.champion, now),
        LastRun.of(observed.last_run) if observed.last_run else None,
        observed.runs.last_success_at,
        {"count": len(observed.pending_since), "oldest_age_s": _oldest_age(observed.pending_since, now)},
        observed.runs.failed,
        observed.candidates.rejected,
        _keep(observed.live_quality, LIVE_QUALITY_KEYS),
        _keep(observed.drift, KEPT_KEYS),
        observed.rejected_inputs_today,
        {"runs": observed.runs.cursor, "decisions": observed.candidates.cursor},
    )


def _stalled(observed: Observed, now: float, bounds: Bounds) -> list[str]:
    problems = []
    failed = observed.runs.failed
    if failed >= bounds.stall_failed_runs:
        last = observed.last_run
        why = f": last reason {last.reason}" if last is not None and last.status is RunStatus.FAILED else ""
        problems.append(f"{failed} failed runs in a row (SAIKIKA_STALL_FAILED_RUNS={bounds.stall_failed_runs}){why}")
    if observed.pending_since:
        oldest = min(observed.pending_since)
        success = _epoch(observed.runs.last_success_at)
        if now - oldest > bounds.stall_after_s and (success is None or success < oldest):
            problems.append(
                f"pending work waiting {(now - oldest) / 3600:.1f} h with no successful run "
                f"(SAIKIKA_STALL_AFTER_S={bounds.stall_after_s:g})"
            )
    return problems


def _degraded(observed: Observed, bounds: Bounds) -> list[str]:
    problems = []
    quality, champion = observed.live_quality, observed.champion
    if quality and quality.get("degraded") and champion and quality.get("champion_version") == champion.version:
        problems.append(
            f"live quality of {champion.version} degraded: micro F1 {quality.get('micro_f1')} on {quality.get('rows')} "
            f"feedback rows (offline {quality.get('offline_micro_f1')})"
            + (f": {quality['why']}" if quality.get("why") else "")
        )
    drift = observed.drift
    if drift and drift.get("above_bound"):
        moved = (drift.get("moved") or [{}])[0]
        problems.append(
            f"label drift on {drift.get('day')} above its bound: divergence {drift.get('divergence')} > "
            f"{drift.get('bound')} (most moved: {moved.get('label')} {moved.get('change')})"
        )
    rejected = observed.candidates.rejected
    if rejected >= bounds.stall_failed_runs:
        problems.append(
            f"{rejected} candidates rejected in a row (SAIKIKA_STALL_FAILED_RUNS={bounds.stall_failed_runs}): "
            "`saikika models list` shows why"
        )
    return problems


def _champion(champion: ChampionHealth | None, now: float) -> ChampionHealth | None:
    if champion is None:
        return None
    since = _epoch(champion.since)
    return replace(champion, age_s=None if since is None else round(now - since, 1))


def _oldest_age(pending_since: Sequence[float], now: float) -> float | None:
    return round(now - min(pending_since), 1) if pending_since else None


def _keep(value: Mapping[str, Any] | None, keys: Sequence[str]) -> dict | None:
    return None if value is None else {key: value.get(key) for key in keys}


def _epoch(when: str | None) -> float | None:
    try:
        return None if not when else datetime.fromisoformat(when).timestamp()
    except ValueError:
        return None
