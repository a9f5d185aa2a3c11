"""The champion cache against real storage: TTL, hot swap under concurrent readers, refusals."""

from __future__ import annotations

import threading
import uuid

import pytest

from saikika.cloud import champion_cache, registry
from saikika.cloud.champion_cache import ChampionCache
from saikika.core.errors import NoChampionError, TransientError
from saikika.model import catalogue, training

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


def test_ttl_counts_from_when_the_pointer_was_asked_not_when_the_answer_came(
    models_bucket, model_files, second_model_files, monkeypatch
):
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
    import numpy as np

    from saikika.model import inference_artifact
    from tests import legacy_v1

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


@pytest.fixture
def proxied(stack, storage_client):
    """A fresh models bucket, reached by the cache only through a fault-injecting proxy."""
    from tests.integration.faults import TcpProxy, storage_through

    direct = storage_client.create_bucket(f"models-{uuid.uuid4().hex[:12]}")
    proxy = TcpProxy(int(stack.env["STORAGE_EMULATOR_HOST"].rsplit(":", 1)[1]))
    with storage_through(proxy, stack.project) as client:
        yield proxy, direct, client.bucket(direct.name)
    proxy.stop()


def serving_through_proxy(proxied, model_files):
    """A champion, and a cache (TTL 10 on a manual clock) that reaches storage through the proxy and serves it."""
    proxy, direct, through_proxy = proxied
    registry.push(direct, *model_files)
    first = registry.set_champion(direct, model_files.metadata, None, reason="test")
    clock = ManualClock()
    cache = ChampionCache(through_proxy, ttl_s=10, clock=clock)
    assert cache.get().version == model_files.metadata["version"]
    return proxy, direct, cache, clock, first


@pytest.mark.parametrize("fault", ["reset", "stall"])
def test_a_storage_outage_keeps_the_model_in_memory_served(proxied, model_files, second_model_files, fault):
    """Storage down or stalled after the TTL: every request is still served by the model in memory, storage is
    asked again once a TTL (not on every request), and the new champion is picked up once storage is back."""
    proxy, direct, cache, clock, first = serving_through_proxy(proxied, model_files)

    proxy.set(fault)
    registry.push(direct, *second_model_files)
    registry.set_champion(direct, second_model_files.metadata, first, reason="test: promoted during the outage")
    clock.now = 10
    before = proxy.connections
    assert cache.get().version == model_files.metadata["version"]
    asked = proxy.connections - before
    assert asked >= 1
    for step in range(1, 10):
        clock.now = 10 + step  # within the TTL of the failed check
        assert cache.get().version == model_files.metadata["version"]
    assert proxy.connections - before == asked

    proxy.set("forward")
    clock.now = 20
    assert cache.get().version == second_model_files.metadata["version"]


def test_no_model_and_no_storage_is_a_transient_error(proxied, model_files):
    proxy, direct, through_proxy = proxied
    registry.push(direct, *model_files)
    registry.set_champion(direct, model_files.metadata, None, reason="test")
    proxy.set("reset")
    with pytest.raises(TransientError, match="champion pointer unreadable"):
        ChampionCache(through_proxy, ttl_s=10).get()


def test_a_model_file_failing_mid_load_keeps_the_current_model_and_is_loaded_later(
    proxied, model_files, second_model_files
):
    """The pointer is readable but the new champion's model.npz answers 503: the instance keeps its model (no
    error reaches a request), does not pin the new version as refused, and loads it once storage answers."""
    proxy, direct, cache, clock, first = serving_through_proxy(proxied, model_files)

    registry.push(direct, *second_model_files)
    registry.set_champion(direct, second_model_files.metadata, first, reason="test")
    proxy.fail_requests = (f"{second_model_files.metadata['version']}%2Fmodel.npz".encode(),)
    clock.now = 10
    assert cache.get().version == model_files.metadata["version"]
    assert proxy.failed_requests >= 1

    proxy.fail_requests = ()
    clock.now = 20
    assert cache.get().version == second_model_files.metadata["version"]
