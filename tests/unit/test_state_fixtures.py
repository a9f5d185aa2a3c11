"""State objects written by the release before typed state (tests/fixtures/state/, see its README) still load, and
writing them back gives the same keys and values: buckets full of old objects keep working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saikika.cloud.batch_runs import BatchRun, LaunchState, RunMode
from saikika.cloud.registry import Champion
from saikika.cloud.training_store import Manifest
from saikika.core import objects
from saikika.core.decisions import Action, Decision, Outcome

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "state"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def names(pattern: str) -> list[str]:
    found = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.glob(pattern))
    assert found, f"no fixture matches {pattern}"
    return found


@pytest.mark.parametrize("name", ["champion.json", "champion-before-rollback.json"])
def test_the_champion_pointer_round_trips(name):
    data = load(name)
    champion = Champion.from_json(data, generation=7)
    assert champion.to_json() == data
    assert champion.generation == 7 and champion.version == data["version"]
    assert [previous.version for previous in champion.history] == [h["version"] for h in data["history"]]


def test_the_pointer_after_a_rollback_is_the_one_before_it_less_its_last_champion():
    before, after = Champion.from_json(load("champion-before-rollback.json")), Champion.from_json(load("champion.json"))
    assert len(before.history) == 2
    assert after.version == before.history[-1].version and after.history == before.history[:-1]
    assert after.reason == f"rolled back from {before.version}"


def test_the_compaction_manifest_round_trips():
    data = load("compacted/manifest.json")
    manifest = Manifest.from_json(data)
    assert manifest.to_json() == data
    assert manifest.rows == data["rows"] and manifest.shards and manifest.retiring
    assert all(objects.day_of(shard.name) == shard.day for shard in manifest.shards)


def test_an_empty_manifest_is_what_a_bucket_without_one_reads_as():
    assert Manifest.from_json({"shards": [], "retiring": []}) == Manifest()
    assert Manifest().to_json() == {"shards": [], "retiring": [], "rows": 0}


@pytest.mark.parametrize("name", names("decision-*.json") + names("decision-log/*.json"))
def test_every_decision_round_trips(name):
    data = load(name)
    decision = Decision.from_json(data)
    assert decision.to_json() == data
    assert decision.outcome == data["outcome"] and decision.action == data["action"]


def test_the_fixtures_hold_every_outcome_and_action():
    decisions = [Decision.from_json(load(name)) for name in names("decision-log/*.json")]
    assert {d.outcome for d in decisions} == set(Outcome)
    assert {d.action for d in decisions} == set(Action)


def test_a_decision_judged_against_a_champion_keeps_both_sides_metrics():
    decision = Decision.from_json(load("decision-rejected-against-champion.json"))
    assert decision.scored and decision.champion_version
    assert decision.candidate_metrics["rows"] == decision.champion_metrics["rows"] == decision.evaluation_rows


@pytest.mark.parametrize("name", names("run-*.json"))
def test_both_old_shapes_of_the_run_record_round_trip(name):
    data = load(name)
    run = BatchRun.from_json(data)
    assert run.to_json() == data
    assert run.mode == data["mode"] and run.state == data.get("state")


def test_the_run_records_hold_each_mode_and_launch_state():
    runs = [BatchRun.from_json(load(name)) for name in names("run-*.json")]
    assert {run.mode for run in runs} == set(RunMode)
    assert {run.state for run in runs if run.mode is RunMode.JOB} == set(LaunchState)
    function = next(run for run in runs if run.mode is RunMode.FUNCTION)
    assert function.model_version and function.state is None


def test_a_decision_by_hand_without_a_previous_champion_still_names_the_key():
    decision = Decision("v1", Action.PROMOTE_BY_HAND, Outcome.PROMOTED, reason="by hand")
    assert decision.to_json()["previous_champion"] is None
    assert Decision.from_json(decision.to_json()) == decision


def test_the_word_vectors_object_name_is_what_the_cli_used_to_build():
    digest = "0123456789abcdef" * 4
    assert objects.word_vectors_object("ja-ginza", digest) == "word-vectors/ja-ginza-0123456789ab.npz"
    assert objects.is_word_vectors(objects.word_vectors_object("ja-ginza", digest))
