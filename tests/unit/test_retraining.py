"""The retrain rule (`saikika.core.retraining.due`) as a table, and the retrain state's objects as typed values that
read what the previous release wrote (tests/fixtures/retrain/, written by that release's Retrainer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saikika.core.retraining import (
    Action,
    Attempt,
    Decision,
    JobInFlight,
    Pending,
    PendingMarker,
    Reason,
    RetrainState,
    RunRecord,
    RunStatus,
    TrainedMarker,
    due,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "retrain"
NOW = 1_000_000.0
SETTLE, INTERVAL = 30.0, 300.0


def work(age: float, force: bool = False) -> Pending:
    """A pending marker whose work arrived `age` seconds before NOW."""
    return Pending(f"retrain/pending/{age}-{force}.json", 1, NOW - age, force)


def job(deadline_in: float) -> JobInFlight:
    return JobInFlight("run1", "job1", NOW - 60, NOW + deadline_in, ("retrain/pending/a.json",))


QUIET = RetrainState()
RAN_10_S_AGO = RetrainState(last_started_at=NOW - 10)
RAN_301_S_AGO = RetrainState(last_started_at=NOW - 301)

# (case, pending, state, action, reason)
CASES = [
    ("nothing pending", [], QUIET, Action.NOTHING, Reason.NOTHING_PENDING),
    ("nothing pending, even long after the last run", [], RAN_301_S_AGO, Action.NOTHING, Reason.NOTHING_PENDING),
    ("settled work runs", [work(31)], QUIET, Action.RUN, Reason.SETTLED),
    ("work exactly settle_s old has settled", [work(SETTLE)], QUIET, Action.RUN, Reason.SETTLED),
    ("the newest work still settling", [work(100), work(1)], QUIET, Action.WAIT, Reason.STILL_ARRIVING),
    ("a trickle cannot starve: the oldest waited the interval", [work(301), work(100), work(1)], QUIET,
     Action.RUN, Reason.WAITED_LONG_ENOUGH),
    ("the oldest exactly min_interval_s old has waited enough", [work(INTERVAL), work(1)], QUIET,
     Action.RUN, Reason.WAITED_LONG_ENOUGH),
    ("a forced request does not wait for quiet", [work(1, force=True)], QUIET, Action.RUN, Reason.FORCED),
    ("a forced request among settling data runs it all", [work(1), work(2, force=True)], QUIET,
     Action.RUN, Reason.FORCED),
    ("the last run too recent", [work(31)], RAN_10_S_AGO, Action.WAIT, Reason.TOO_RECENT),
    ("a forced request waits for the interval too", [work(1, force=True)], RAN_10_S_AGO,
     Action.WAIT, Reason.TOO_RECENT),
    ("a trickle past the interval still waits for a recent run", [work(400), work(1)], RAN_10_S_AGO,
     Action.WAIT, Reason.TOO_RECENT),
    ("the last run long enough ago", [work(31)], RAN_301_S_AGO, Action.RUN, Reason.SETTLED),
    ("a job in flight", [work(31)], RetrainState(job=job(60)), Action.WAIT, Reason.JOB_IN_FLIGHT),
    ("a job in flight, even with nothing pending", [], RetrainState(job=job(60)), Action.WAIT, Reason.JOB_IN_FLIGHT),
    ("a job in flight, even for a forced request", [work(31, force=True)], RetrainState(job=job(60)),
     Action.WAIT, Reason.JOB_IN_FLIGHT),
    ("a job past its deadline is presumed dead", [work(31)], RetrainState(job=job(-1)), Action.RUN, Reason.SETTLED),
    ("a job at its deadline is presumed dead", [work(31)], RetrainState(job=job(0)), Action.RUN, Reason.SETTLED),
    ("a dead job and nothing pending", [], RetrainState(job=job(-1)), Action.NOTHING, Reason.NOTHING_PENDING),
]  # fmt: skip


@pytest.mark.parametrize("case, pending, state, action, reason", CASES, ids=[c[0] for c in CASES])
def test_is_a_run_due(case, pending, state, action, reason):
    decision = due(pending, state, NOW, SETTLE, INTERVAL)
    assert (decision.action, decision.reason) == (action, reason), case
    assert Decision.from_json(decision.to_json()) == decision


def test_every_reason_has_a_case():
    assert {case[4] for case in CASES} == set(Reason)


def test_the_reasons_carry_their_figures():
    assert (
        due([work(100), work(2)], QUIET, NOW, SETTLE, INTERVAL).detail == "new data still arriving (newest 2.0 s old)"
    )
    assert due([work(31)], RAN_10_S_AGO, NOW, SETTLE, INTERVAL).detail == "the last run started 10.0 s ago"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


RUN_RECORDS = ["run-trained.json", "run-trained-by-job.json", "run-up-to-date.json", "run-skipped.json",
               "run-failed.json"]  # fmt: skip


@pytest.mark.parametrize("name", RUN_RECORDS)
def test_run_records_of_the_previous_release_round_trip(name):
    written = fixture(name)
    record = RunRecord.from_json(written)
    assert record.status == RunStatus(written["status"]) and record.reason == written["reason"]
    assert record.to_json() == written


def test_every_recorded_status_has_a_fixture():
    recorded = {fixture(name)["status"] for name in RUN_RECORDS}
    assert recorded == {RunStatus.TRAINED, RunStatus.UP_TO_DATE, RunStatus.SKIPPED, RunStatus.FAILED}
    assert fixture("run-trained-by-job.json")["job_run_id"]


@pytest.mark.parametrize("name", ["state.json", "state-after-job.json"])
def test_the_state_of_the_previous_release_round_trips(name):
    written = fixture(name)
    state = RetrainState.from_json(written)
    assert state.to_json() == written
    assert state.last_started_at == written["last_started_at"] and state.last_run is not None


def test_the_state_holds_the_attempt_and_the_job_typed():
    state = RetrainState.from_json(fixture("state.json"))
    assert isinstance(state.attempt, Attempt) and state.attempt.number == 1
    assert isinstance(state.job, JobInFlight) and state.job.job_id and len(state.job.pending) == 1
    assert state.last_run.status is RunStatus.FAILED


def test_an_empty_state_is_the_quiet_one():
    assert RetrainState.from_json({}) == RetrainState() and RetrainState().to_json() == {}


@pytest.mark.parametrize("name", ["pending-object.json", "pending-request.json"])
def test_pending_markers_of_the_previous_release_round_trip(name):
    written = fixture(name)
    assert PendingMarker.from_json(written).to_json() == written


def test_the_two_kinds_of_pending_marker():
    assert PendingMarker.from_json(fixture("pending-object.json")).object == "training/base/a.jsonl"
    request = PendingMarker.from_json(fixture("pending-request.json"))
    assert (request.request, request.reason, request.object) == ("7654321", "engineer asked", None)


def test_the_trained_marker_round_trips():
    written = fixture("trained.json")
    marker = TrainedMarker.from_json(written)
    assert marker.to_json() == written and marker.version == written["version"]


def test_status_values_are_the_strings_written_to_objects_and_logs():
    assert [str(s) for s in RunStatus] == [
        "trained", "skipped", "failed", "up-to-date", "deferred", "handed-off", "ignored"
    ]  # fmt: skip
    assert json.dumps(RunStatus.UP_TO_DATE) == '"up-to-date"'
