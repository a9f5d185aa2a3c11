"""The fault-injection suite, small (make chaos runs it large and writes bench/chaos.json): under each fault,
every published item is predicted exactly once or stored as rejected with its reason; nothing is lost, nothing
duplicated, nothing predicted that was not published; the champion moves only through recorded decisions."""

from __future__ import annotations

import pytest

from saikika.model import catalogue, training
from tests.integration import chaos  # tests/integration/chaos.py

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory, model_files):
    running = chaos.ChaosStack(tmp_path_factory.mktemp("chaos"), model_files, ack_deadline_s=10)
    yield running
    running.stop()


def clean(tally: chaos.Tally) -> None:
    assert (tally.lost, tally.duplicated, tally.unexpected) == (0, 0, 0), tally
    assert tally.seconds_to_recover is not None, tally


def test_storage_outage_mid_stream(chaos_stack):
    tally = chaos.storage_outage(chaos_stack, messages=6, outage_s=4)
    clean(tally)
    assert tally.predicted_once + tally.rejected == tally.published


def test_storage_slower_than_the_ack_deadline(chaos_stack):
    tally = chaos.storage_stall(chaos_stack, messages=3, stall_s=12)
    clean(tally)
    assert tally.predicted_once + tally.rejected == tally.published


def test_predict_killed_mid_message_and_restarted(chaos_stack):
    tally = chaos.predict_killed(chaos_stack, messages=10)
    clean(tally)
    assert tally.predicted_once + tally.rejected == tally.published


def test_a_burst(chaos_stack):
    tally = chaos.burst(chaos_stack, items=2_000)
    clean(tally)
    assert tally.predicted_once + tally.rejected == tally.published


def test_a_feedback_backlog(chaos_stack):
    tally = chaos.feedback_backlog(chaos_stack, messages=5)
    assert tally.lost == 0


def test_concurrent_promotions_move_the_champion_only_through_decisions(chaos_stack):
    candidates = [training.serialize(training.train(list(catalogue.generate(600, seed=70 + i)))) for i in range(3)]
    outcome = chaos.concurrent_promotions(chaos_stack, candidates)
    assert outcome["champions_without_a_recorded_decision"] == []


def test_concurrent_retrains_train_once(chaos_stack):
    outcome = chaos.concurrent_retrains(chaos_stack, runners=3)
    assert (outcome["trained"], outcome["deferred_or_up_to_date"]) == (1, 2), outcome
