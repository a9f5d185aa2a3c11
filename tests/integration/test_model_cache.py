"""The champion cache against real storage: TTL, hot swap under concurrent readers, refusals."""

from __future__ import annotations

import threading
import uuid

import pytest

from saikika.cloud import champion_cache, registry
from saikika.model import catalogue, training
from saikika.core.errors import NoChampionError, TransientError
from saikika.cloud.champion_cache import ChampionCache

pytestmark = pytest.mark.emulators


class ManualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def models_bucket(storage_client):
    return storage_client.create_bucket(f"models-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def second_model_files():
    return training.serialize(training.train(list(catalogue.generate(800, seed=23))))


def test_no_champion_raises(models_bucket):
    with pytest.raises(NoChampionError):
        ChampionCache(models_bucket, ttl_s=60).get()


def test_swaps_after_ttl_only(models_bucket, model_files, second_model_files):
    clock = ManualClock()
    registry.push(models_bucket, *model_files)
    first = registry.set_champion(models_bucket, model_files[1], None, reason="test")
    cache = ChampionCache(models_bucket, ttl_s=10, clock=clock)
    assert cache.get().version == model_files[1]["version"]

    registry.push(models_bucket, *second_model_files)
    registry.set_champion(models_bucket, second_model_files[1], first, reason="test")
    clock.now = 9.9
    assert cache.get().version == model_files[1]["version"]  # within the TTL: no storage read at all
    clock.now = 10.0
    assert cache.get().version == second_model_files[1]["version"]


def test_ttl_counts_from_when_the_pointer_was_asked_not_when_the_answer_came(models_bucket, model_files,
                                                                             second_model_files, monkeypatch):
    registry.push(models_bucket, *model_files)
    first = registry.set_champion(models_bucket, model_files[1], None, reason="test")
    clock = ManualClock()
    cache = ChampionCache(models_bucket, ttl_s=10, clock=clock)
    assert cache.get().version == model_files[1]["version"]

    real_generation = champion_cache.gcs.generation

    def slow_generation(*args, **kwargs):  # the real read, on a clock that moves 7 s while it runs
        answer = real_generation(*args, **kwargs)
        clock.now += 7.0
        return answer

    monkeypatch.setattr(champion_cache.gcs, "generation", slow_generation)
    clock.now = 10.0
    assert cache.get().version == model_files[1]["version"]  # asked at 10, answered at 17: unchanged
    registry.push(models_bucket, *second_model_files)
    registry.set_champion(models_bucket, second_model_files[1], first, reason="test")
    clock.now = 20.0  # 10 s after asking, only 3 s after the answer: stale
    assert cache.get().version == second_model_files[1]["version"]


def test_readers_never_fail_during_a_swap(models_bucket, model_files, second_model_files):
    registry.push(models_bucket, *model_files)
    registry.push(models_bucket, *second_model_files)
    current = registry.set_champion(models_bucket, model_files[1], None, reason="test")
    cache = ChampionCache(models_bucket, ttl_s=0)  # every call re-checks the pointer
    items = list(catalogue.generate(5, seed=1))
    seen: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                loaded = cache.get()
                assert len(loaded.predict(items)) == 5
                seen.add(loaded.version)
            except BaseException as exc:  # noqa: BLE001 - any failure is what we look for
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for files in (second_model_files, model_files, second_model_files):
            current = registry.set_champion(models_bucket, files[1], current, reason="swap")
            deadline = threading.Event()
            while files[1]["version"] not in seen or cache.current.version != files[1]["version"]:
                deadline.wait(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert seen == {model_files[1]["version"], second_model_files[1]["version"]}


def test_tampered_champion_without_a_current_model_is_transient(models_bucket, model_files):
    data, metadata, arrays = model_files
    registry.push(models_bucket, data, metadata, arrays + b"x")
    registry.set_champion(models_bucket, metadata, None, reason="test")
    with pytest.raises(TransientError, match="does not match"):
        ChampionCache(models_bucket, ttl_s=60).get()


def test_missing_version_files_keep_the_current_model(models_bucket, model_files):
    registry.push(models_bucket, *model_files)
    current = registry.set_champion(models_bucket, model_files[1], None, reason="test")
    clock = ManualClock()
    cache = ChampionCache(models_bucket, ttl_s=1, clock=clock)
    assert cache.get().version == model_files[1]["version"]
    registry.set_champion(models_bucket, {"version": "deleted-version", "sha256": "0" * 64}, current, reason="test")
    clock.now = 5
    assert cache.get().version == model_files[1]["version"]


def test_serves_inference_arrays_and_refuses_a_version_without_them(models_bucket, model_files):
    """Predictors serve model.npz only (they never import skops): a champion without it is refused, and the
    instance keeps the model it has."""
    data, metadata, arrays = model_files
    registry.push(models_bucket, *model_files)
    first = registry.set_champion(models_bucket, metadata, None, reason="test")
    clock = ManualClock()
    cache = ChampionCache(models_bucket, ttl_s=1, clock=clock)
    assert (cache.get().version, cache.get().backend) == (metadata["version"], "inference")
    plain = {k: v for k, v in metadata.items() if k != "inference"} | {"version": "no-arrays-1"}
    registry.push(models_bucket, data, plain)
    registry.set_champion(models_bucket, plain, first, reason="test")
    clock.now = 2
    served = cache.get()
    assert (served.version, served.backend) == (metadata["version"], "inference")

def test_a_previous_format_champion_is_served_and_swapped_for_the_current_format(models_bucket, model_files):
    """A version trained before the vectorised featuriser (inference format v1) keeps serving from real storage,
    scoring as its own pipeline did, and a new-format champion replaces it by the usual hot swap."""
    import legacy_v1
    import numpy as np

    from saikika.model import inference_artifact

    old_files, old_pipeline = legacy_v1.build(list(catalogue.generate(600, seed=31)), sorted(catalogue.FEATURES))
    registry.push(models_bucket, *old_files)
    old = registry.set_champion(models_bucket, old_files.metadata, None, reason="test: a v1 champion")
    clock = ManualClock()
    cache = ChampionCache(models_bucket, ttl_s=1, clock=clock)
    served = cache.get()
    assert served.version == old_files.metadata["version"]
    assert isinstance(served.scorer, inference_artifact.MurmurHashScorer)
    texts = [item.text() for item in catalogue.generate(50, seed=32)]
    np.testing.assert_allclose(served.scores(texts), old_pipeline.predict_proba(texts), rtol=0, atol=1e-9)

    registry.push(models_bucket, *model_files)
    registry.set_champion(models_bucket, model_files.metadata, old, reason="test: the current format")
    clock.now = 2
    assert isinstance(cache.get().scorer, inference_artifact.FnvHashScorer)
