"""Compare-and-swap on real storage: racing promotions, rollback, and the retrain lease."""

from __future__ import annotations

import threading
import uuid

import pytest

from saikika.cloud import lease, registry
from saikika.core import objects, rows
from saikika.core.decisions import Action, Decision, Outcome
from saikika.core.settings import Settings
from saikika.handlers.promote import Promoter
from saikika.model import catalogue, training

pytestmark = pytest.mark.emulators


@pytest.fixture
def fresh(stack, storage_client):
    suffix = uuid.uuid4().hex[:10]
    data = storage_client.create_bucket(f"data-{suffix}")
    models = storage_client.create_bucket(f"models-{suffix}")
    settings = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": stack.project,
            "SAIKIKA_DATA_BUCKET": data.name,
            "SAIKIKA_MODELS_BUCKET": models.name,
            "SAIKIKA_PREDICTIONS_BUCKET": f"p-{suffix}",
        }
    )
    return settings, data, models, storage_client


@pytest.fixture(scope="module")
def two_candidates():
    first = training.serialize(training.train(list(catalogue.generate(900, seed=41))))
    second = training.serialize(training.train(list(catalogue.generate(900, seed=42))))
    return first, second


def test_two_racing_promotions_leave_one_champion_and_a_true_history(fresh, two_candidates):
    settings, data, models, client = fresh
    data.blob(objects.HOLDOUT_OBJECT).upload_from_string(rows.dumps(catalogue.generate(300, seed=43, noise=0.0)))
    for files in two_candidates:
        registry.push(models, *files)
    versions = [files[1]["version"] for files in two_candidates]
    barrier = threading.Barrier(2)
    decisions: dict[str, Decision] = {}

    def judge(version: str) -> None:
        promoter = Promoter(settings, client)
        barrier.wait()
        decisions[version] = promoter.judge(version)

    threads = [threading.Thread(target=judge, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    champion = registry.read_champion(models)
    assert champion.version in versions
    promoted = [v for v in versions if decisions[v].outcome is Outcome.PROMOTED]
    assert champion.version in promoted
    if len(promoted) == 2:
        # Both won in turn: the later one displaced the earlier, and the pointer's history says so.
        other = next(v for v in versions if v != champion.version)
        assert [h.version for h in champion.history] == [other]
        assert decisions[champion.version].champion_version == other
    else:
        loser = next(v for v in versions if v != champion.version)
        assert decisions[loser].outcome is Outcome.REJECTED
        assert decisions[loser].champion_version == champion.version  # it re-read and re-decided
    assert sorted(h.version for h in registry.decision_log(models)) == sorted(versions)


def test_rollback_is_a_compare_and_swap(fresh, two_candidates):
    _, _, models, _ = fresh
    a_meta, b_meta = two_candidates[0].metadata, two_candidates[1].metadata
    first = registry.set_champion(models, a_meta, None, reason="a")
    second = registry.set_champion(models, b_meta, first, reason="b")
    with pytest.raises(registry.ChampionChanged):
        registry.set_champion(models, a_meta, first, reason="stale expectation")
    back = registry.rollback(models, second)
    assert back.version == a_meta["version"] and back.history == ()
    with pytest.raises(registry.ChampionChanged):
        registry.rollback(models, second)  # the pointer moved on: a stale rollback changes nothing
    with pytest.raises(ValueError, match="no previous champion"):
        registry.rollback(models, back)


def test_lease_is_exclusive_expires_and_is_released_only_by_its_holder(fresh):
    _, _, models, _ = fresh
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731
    held = lease.acquire(models, "retrain/lease.json", 60, clock)
    assert isinstance(held, lease.Lease)
    assert isinstance(lease.acquire(models, "retrain/lease.json", 60, clock), lease.Busy)
    now[0] += 61  # the holder died: its lease expired
    taken_over = lease.acquire(models, "retrain/lease.json", 60, clock)
    assert isinstance(taken_over, lease.Lease) and taken_over.holder != held.holder
    lease.release(models, held)  # a stale holder cannot release the new holder's lease
    assert isinstance(lease.acquire(models, "retrain/lease.json", 60, clock), lease.Busy)
    lease.release(models, taken_over)
    assert isinstance(lease.acquire(models, "retrain/lease.json", 60, clock), lease.Lease)


def test_a_champion_with_malformed_metadata_does_not_block_promotions(fresh, two_candidates):
    """A champion whose metadata.json lacks its labels could not be loaded for comparison, and every candidate
    raised and went to the dead-letter topic: it now counts as no usable champion, and the decision says so."""
    settings, data, models, client = fresh
    data.blob(objects.HOLDOUT_OBJECT).upload_from_string(rows.dumps(catalogue.generate(300, seed=43, noise=0.0)))
    broken, candidate = two_candidates
    malformed = {k: v for k, v in broken.metadata.items() if k != "labels"}
    registry.push(models, broken.model, malformed, broken.inference)
    registry.set_champion(models, malformed, None, reason="test: a champion with malformed metadata")
    registry.push(models, *candidate)
    decision = Promoter(settings, client).judge(candidate.metadata["version"])
    assert decision.outcome is Outcome.PROMOTED, decision
    assert "no usable champion" in decision.reason
    assert registry.read_champion(models).version == candidate.metadata["version"]


def test_a_required_holdout_that_is_missing_rejects_every_candidate(fresh, two_candidates):
    """Feedback can shape the evaluation slice; with SAIKIKA_PROMOTION_REQUIRE_HOLDOUT only the trusted file counts."""
    settings, data, models, client = fresh
    strict = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": settings.project,
            "SAIKIKA_DATA_BUCKET": data.name,
            "SAIKIKA_MODELS_BUCKET": models.name,
            "SAIKIKA_PREDICTIONS_BUCKET": "p-strict",
            "SAIKIKA_PROMOTION_REQUIRE_HOLDOUT": "true",
        }
    )
    data.blob("training/base/rows.jsonl").upload_from_string(rows.dumps(catalogue.generate(300, seed=44)))
    first, _ = two_candidates
    registry.push(models, *first)
    decision = Promoter(strict, client).judge(first.metadata["version"])
    assert decision.outcome is Outcome.REJECTED and "REQUIRE_HOLDOUT" in decision.reason
    assert registry.read_champion(models) is None

    data.blob(objects.HOLDOUT_OBJECT).upload_from_string(rows.dumps(catalogue.generate(300, seed=43, noise=0.0)))
    models.blob(objects.version_file(first.metadata["version"], objects.DECISION_FILE)).delete()
    decision = Promoter(strict, client).judge(first.metadata["version"])
    assert decision.outcome is Outcome.PROMOTED and decision.evaluated_on.endswith(objects.HOLDOUT_OBJECT)


def test_promotions_and_rollbacks_by_hand_swap_the_pointer_and_are_logged(fresh, two_candidates):
    """The one promote-by-hand (the CLI, the demo and the tests use it) and its rollback: each a compare-and-swap
    and one decision-log entry naming the champion it replaced."""
    _, _, models, _ = fresh
    a, b = (files.metadata["version"] for files in two_candidates)
    first, replaced = registry.promote_by_hand(models, two_candidates[0].metadata, "by hand: a")
    assert (first.version, replaced) == (a, None)
    second, replaced = registry.promote_by_hand(models, two_candidates[1].metadata, "by hand: b")
    assert (second.version, replaced.version) == (b, a) and [h.version for h in second.history] == [a]
    restored, rolled_back = registry.rollback_by_hand(models)
    assert (restored.version, rolled_back.version) == (a, b)
    assert registry.read_champion(models) == restored
    with pytest.raises(ValueError, match="no previous champion"):
        registry.rollback_by_hand(models)
    logged = [(d.action, d.version, d.previous_champion, d.reason) for d in registry.decision_log(models)]
    assert logged == [
        (Action.PROMOTE_BY_HAND, a, None, "by hand: a"),
        (Action.PROMOTE_BY_HAND, b, a, "by hand: b"),
        (Action.ROLLBACK, a, b, None),
    ]
    assert all(d.outcome is Outcome.PROMOTED and d.decided_at for d in registry.decision_log(models))
