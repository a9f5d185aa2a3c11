"""The loop-health rule (`saikika.core.health.assess`) as a table, the incremental counters (a success ends a streak,
records before it are never read), and monitoring/health.json read back as it was written."""

from __future__ import annotations

import json
import logging

import pytest

from saikika.core.decisions import Action as DecisionAction
from saikika.core.decisions import Decision, Outcome
from saikika.core.health import (
    LOG_LEVELS,
    Bounds,
    CandidateCount,
    ChampionHealth,
    HealthStatus,
    LoopHealth,
    Observed,
    RunCount,
    assess,
    count_candidates,
    count_runs,
)
from saikika.core.retraining import RunRecord, RunStatus, iso

NOW = 1_800_000_000.0
HOUR = 3600.0
BOUNDS = Bounds(stall_after_s=6 * HOUR, stall_failed_runs=3)
CHAMPION = ChampionHealth("v1", iso(NOW - 2 * HOUR), None, 0.95)


def record(status: RunStatus, started: float = NOW - 60, reason: str = "") -> RunRecord:
    return RunRecord(status, reason or f"a {status} run", None, "tick", iso(started) or "", 1.0, 1)


def observed(**changes) -> Observed:
    base = {
        "champion": CHAMPION,
        "last_run": record(RunStatus.TRAINED, NOW - 10 * HOUR),
        "pending_since": [],
        "runs": RunCount(0, iso(NOW - 10 * HOUR), "retrain/runs/a.json"),
        "candidates": CandidateCount(0, "models/history/a.json"),
        "live_quality": None,
        "drift": None,
        "rejected_inputs_today": 0,
    }
    return Observed(**(base | changes))


FAILING = record(RunStatus.FAILED, reason="ValueError: the word vectors do not match")
QUALITY = {
    "champion_version": "v1",
    "micro_f1": 0.6,
    "offline_micro_f1": 0.95,
    "rows": 40,
    "degraded": True,
    "why": "micro F1 0.600 < floor 0.7; worst label kids (F1 0.2)",
    "computed_at": iso(NOW),
}
DRIFT = {
    "day": "2027-01-15",
    "divergence": 0.3,
    "bound": 0.1,
    "no_label_share": 0.6,
    "above_bound": True,
    "items": 400,
    "min_items": 100,
    "moved": [{"label": "(none)", "change": 0.55}],
}
OLD_SUCCESS = RunCount(0, iso(NOW - 10 * HOUR), "retrain/runs/a.json")

# (case, observed, status, words every problem line must hold, in order)
CASES = [
    ("all quiet", observed(), HealthStatus.OK, []),
    ("work pending within the bound", observed(pending_since=[NOW - HOUR]), HealthStatus.OK, []),
    ("pending work older than the bound, no success since", observed(pending_since=[NOW - 7 * HOUR, NOW - 60]),
     HealthStatus.STALLED,
     ["pending work waiting 7.0 h with no successful run (SAIKIKA_STALL_AFTER_S=21600)"]),
    ("old pending work, but a run succeeded after it arrived",
     observed(pending_since=[NOW - 7 * HOUR], runs=RunCount(0, iso(NOW - HOUR), "retrain/runs/b.json")),
     HealthStatus.OK, []),
    ("old pending work and no successful run ever", observed(pending_since=[NOW - 7 * HOUR], runs=RunCount()),
     HealthStatus.STALLED, ["pending work waiting 7.0 h"]),
    ("two failed runs in a row: not yet", observed(runs=RunCount(2, None, "c"), last_run=FAILING), HealthStatus.OK, []),
    ("three failed runs in a row", observed(runs=RunCount(3, None, "c"), last_run=FAILING), HealthStatus.STALLED,
     ["3 failed runs in a row (SAIKIKA_STALL_FAILED_RUNS=3): last reason ValueError: the word vectors do not match"]),
    ("stalled outranks degraded and no champion",
     observed(runs=RunCount(4, None, "c"), last_run=FAILING, champion=None, drift=DRIFT), HealthStatus.STALLED,
     ["4 failed runs in a row", "label drift on 2027-01-15 above its bound", "no champion"]),
    ("the champion's live quality degraded", observed(live_quality=QUALITY), HealthStatus.DEGRADED,
     ["live quality of v1 degraded: micro F1 0.6 on 40 feedback rows (offline 0.95): micro F1 0.600 < floor"]),
    ("a degraded live quality of an earlier champion",
     observed(live_quality=QUALITY | {"champion_version": "v0"}), HealthStatus.OK, []),
    ("live quality not degraded", observed(live_quality=QUALITY | {"degraded": False}), HealthStatus.OK, []),
    ("label drift above its bound", observed(drift=DRIFT), HealthStatus.DEGRADED,
     ["label drift on 2027-01-15 above its bound: divergence 0.3 > 0.1 (most moved: (none) 0.55)"]),
    ("label drift within its bound", observed(drift=DRIFT | {"above_bound": False}), HealthStatus.OK, []),
    ("three candidates rejected in a row", observed(candidates=CandidateCount(3, "h")), HealthStatus.DEGRADED,
     ["3 candidates rejected in a row (SAIKIKA_STALL_FAILED_RUNS=3)"]),
    ("two candidates rejected: not yet", observed(candidates=CandidateCount(2, "h")), HealthStatus.OK, []),
    ("no champion", observed(champion=None), HealthStatus.NO_CHAMPION, ["no champion"]),
    ("degraded outranks no champion", observed(champion=None, drift=DRIFT), HealthStatus.DEGRADED,
     ["label drift", "no champion"]),
]  # fmt: skip


@pytest.mark.parametrize("case, seen, status, problems", CASES, ids=[c[0] for c in CASES])
def test_the_loop_is_assessed(case, seen, status, problems):
    health = assess(seen, NOW, BOUNDS)
    assert health.status is status, case
    assert len(health.problems) == len(problems), health.problems
    for line, words in zip(health.problems, problems, strict=True):
        assert line.startswith(words), line
    assert LoopHealth.from_json(json.loads(json.dumps(health.to_json()))) == health


def test_the_object_has_the_contract_keys_and_figures():
    seen = observed(
        pending_since=[NOW - 120, NOW - 30], live_quality=QUALITY, drift=DRIFT, rejected_inputs_today=2,
        runs=RunCount(1, iso(NOW - HOUR), "retrain/runs/z.json"), candidates=CandidateCount(1, "models/history/z.json"),
    )  # fmt: skip
    out = assess(seen, NOW, BOUNDS).to_json()
    assert list(out) == [
        "checked_at", "status", "problems", "champion", "last_run", "last_successful_run_at", "pending",
        "consecutive_failed_runs", "consecutive_rejected_candidates", "last_live_quality", "drift",
        "rejected_inputs_today", "cursors",
    ]  # fmt: skip
    assert out["checked_at"] == iso(NOW) and out["status"] == "degraded"
    assert out["champion"] == {"version": "v1", "since": iso(NOW - 2 * HOUR), "age_s": 7200.0, "offline_micro_f1": 0.95}
    assert out["last_run"] == {"status": "trained", "reason": "a trained run", "started_at": iso(NOW - 10 * HOUR),
                               "version": None}  # fmt: skip
    assert out["pending"] == {"count": 2, "oldest_age_s": 120.0}
    assert out["last_live_quality"] == {k: QUALITY[k] for k in
                                        ("champion_version", "micro_f1", "offline_micro_f1", "rows", "computed_at",
                                         "degraded")}  # fmt: skip
    assert out["drift"] == {"day": "2027-01-15", "divergence": 0.3, "bound": 0.1, "no_label_share": 0.6,
                            "above_bound": True, "items": 400, "min_items": 100}  # fmt: skip
    assert (out["consecutive_failed_runs"], out["consecutive_rejected_candidates"]) == (1, 1)
    assert out["cursors"] == {"runs": "retrain/runs/z.json", "decisions": "models/history/z.json"}


def test_the_log_line_carries_the_fields_alerts_read_at_its_severity():
    health = assess(observed(runs=RunCount(3, None, "c"), last_run=FAILING, drift=DRIFT), NOW, BOUNDS)
    fields = health.log_fields()
    assert fields["status"] == "stalled" and fields["drift"] == 0.3 and fields["consecutive_failed_runs"] == 3
    assert set(fields) == {
        "status", "problems", "champion_version", "champion_age_s", "pending", "oldest_pending_age_s",
        "consecutive_failed_runs", "consecutive_rejected_candidates", "live_micro_f1", "drift",
    }  # fmt: skip
    assert LOG_LEVELS == {
        HealthStatus.OK: logging.INFO,
        HealthStatus.DEGRADED: logging.WARNING,
        HealthStatus.NO_CHAMPION: logging.WARNING,
        HealthStatus.STALLED: logging.ERROR,
    }


F, T, S, U = RunStatus.FAILED, RunStatus.TRAINED, RunStatus.SKIPPED, RunStatus.UP_TO_DATE
# (case, the previous count, new records oldest first, failed in a row, newest success, records read)
RUN_CASES = [
    ("failures add to the previous streak", 2, [F, F], 4, "before", 2),
    ("a success ends the streak", 2, [F, T, F], 1, 1, 2),
    ("up to date is a success", 5, [U], 0, 0, 1),
    ("a skipped run neither adds nor ends", 1, [S, F, S], 2, "before", 3),
    ("only the newest records back to the success are read", 0, [F, F, T, F, F], 2, 2, 3),
]  # fmt: skip


@pytest.mark.parametrize("case, before, statuses, failed, success, reads", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_failed_runs_are_counted_from_the_new_records_only(case, before, statuses, failed, success, reads):
    records = [record(status, NOW - 100 + i) for i, status in enumerate(statuses)]
    read = []

    def newest_first():
        for found in reversed(records):
            read.append(found)
            yield found

    previous = RunCount(before, "before", "retrain/runs/old.json")
    count = count_runs(previous, newest_first(), "retrain/runs/new.json")
    assert count.failed == failed, case
    assert count.last_success_at == ("before" if success == "before" else records[success].started_at)
    assert count.cursor == "retrain/runs/new.json" and len(read) == reads


def decision(outcome: Outcome, action: DecisionAction = DecisionAction.JUDGE) -> Decision:
    return Decision("v", action, outcome)


J_REJ, J_PRO = decision(Outcome.REJECTED), decision(Outcome.PROMOTED)
ROLLBACK, BY_HAND = (
    decision(Outcome.PROMOTED, DecisionAction.ROLLBACK),
    decision(Outcome.PROMOTED, DecisionAction.PROMOTE_BY_HAND),
)
CANDIDATE_CASES = [
    ("rejections add to the previous streak", 1, [J_REJ, J_REJ], 3),
    ("a promotion ends the streak", 4, [J_REJ, J_PRO, J_REJ], 1),
    ("a promotion by hand ends it too", 4, [BY_HAND], 0),
    ("already the champion neither adds nor ends", 1, [decision(Outcome.ALREADY_CHAMPION), J_REJ], 2),
]  # fmt: skip


@pytest.mark.parametrize("case, before, decisions, rejected", CANDIDATE_CASES, ids=[c[0] for c in CANDIDATE_CASES])
def test_rejected_candidates_are_counted_from_the_new_entries_only(case, before, decisions, rejected):
    count = count_candidates(CandidateCount(before, "old"), reversed(decisions), "new")
    assert (count.rejected, count.cursor) == (rejected, "new"), case


def test_a_rollback_ends_a_rejection_streak_as_the_promotion_it_is():
    # A rollback points the champion at another version (outcome promoted): the loop moved, by hand.
    assert count_candidates(CandidateCount(3, "old"), [ROLLBACK], "new").rejected == 0


def test_the_object_of_an_earlier_tick_is_read_with_its_counters_and_cursors():
    written = assess(observed(runs=RunCount(2, "t", "retrain/runs/x.json")), NOW, BOUNDS)
    again = LoopHealth.from_json(written.to_json())
    assert again.runs == RunCount(2, "t", "retrain/runs/x.json")
    assert again.candidates == CandidateCount(0, "models/history/a.json")


def test_a_look_back_offset_sorts_between_the_records_before_and_after_it():
    from datetime import UTC, datetime, timedelta

    from saikika.core import objects

    when = datetime(2027, 1, 15, 12, tzinfo=UTC)
    offset = objects.stamped_from(objects.RETRAIN_RUNS_PREFIX, when)
    before, after = (objects.retrain_run(when + timedelta(microseconds=d)) for d in (-1, 0))
    assert before < offset <= after
    assert objects.stamp_time(after) == when
    quality = objects.live_quality(when, "v1")
    assert quality.startswith(objects.stamped_from(objects.LIVE_QUALITY_PREFIX, objects.stamp_time(after)))
    assert quality.startswith(objects.LIVE_QUALITY_PREFIX + "20270115T120000.000000Z")
    assert objects.stamp_time("retrain/runs/not-a-stamp.json") is None
    assert objects.drift_day("2027-01-15") == "monitoring/drift/dt=2027-01-15.json"
