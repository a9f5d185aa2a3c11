"""The loop on the emulators: feedback → training data → retrain → judge and promote → hot swap.

One stack for the module with a fast loop; the steps run in file order and build on each other.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from saikika.cloud import registry
from saikika.core import jsonl, objects, rows
from saikika.core.decisions import Action
from saikika.model import artifact, catalogue, training
from tests.integration.helpers import (
    feedback_rows,
    publish,
    saikika_cli,
    start_stack,
    today,
    wait_for_blob,
    wait_for_prediction_lines,
    wait_until,
)

pytestmark = pytest.mark.emulators

ALL_FEATURES = {**catalogue.FEATURES, **catalogue.NEW_FEATURES}
TTL_S = 1.0  # the predictors' SAIKIKA_MODEL_TTL_S in this module's stack


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    running = start_stack(
        tmp_path_factory.mktemp("loop"),
        retrain_tick_s=1.0,
        SAIKIKA_MODEL_TTL_S=str(TTL_S),
        SAIKIKA_RETRAIN_MIN_INTERVAL_S="4",
        SAIKIKA_RETRAIN_SETTLE_S="1",
        SAIKIKA_RETRAIN_MIN_ROWS="50",
        SAIKIKA_LOG_LEVEL="DEBUG",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def buckets(loop):
    client = loop.storage_client()
    return {key: client.bucket(loop.env[f"SAIKIKA_{key.upper()}_BUCKET"]) for key in ("data", "models", "predictions")}


def runs(models_bucket) -> list[dict]:
    return [json.loads(b.download_as_bytes()) for b in models_bucket.list_blobs(prefix="retrain/runs/")]


def champion_version(models_bucket) -> str | None:
    champion = registry.read_champion(models_bucket)
    return champion.version if champion else None


def wait_for_judged_champion(models_bucket, previous: str | None, timeout_s: float) -> str:
    """The promoter moves the pointer first and writes decision.json right after: wait for both."""

    def judged_new_champion():
        version = champion_version(models_bucket)
        return version if version != previous and version and registry.read_decision(models_bucket, version) else None

    return wait_until("a new, judged champion", judged_new_champion, timeout_s=timeout_s)


def upload_rows(data_bucket, name: str, items) -> None:
    data_bucket.blob(name).upload_from_string(rows.dumps(items), content_type="application/x-ndjson")


def log_of(loop, function: str) -> list[dict]:
    text = (loop.state_dir / "logs" / f"function-{function}.log").read_text()
    return [json.loads(line) for line in jsonl.lines(text) if line.startswith("{")]


def test_feedback_becomes_training_data_and_bad_feedback_is_rejected(loop, buckets):
    publisher = loop.publisher()
    body = {
        "items": [
            {"id": "fb-1", "title": "限定モデル 腕時計", "labels": ["limited-edition"]},
            {"id": "fb-2", "title": "plain mug", "labels": []},
            {"id": "fb-3", "title": "no labels field"},
        ]
    }
    message_id = publish(loop, publisher, json.dumps(body, ensure_ascii=False).encode(), topic="feedback")
    stored = feedback_rows(buckets["data"], message_id)
    assert [(r["id"], r["labels"]) for r in stored] == [("fb-1", ["limited-edition"]), ("fb-2", [])]
    assert all(r["event_time"] for r in stored)  # the message's publish time: the row's event time
    rejected = json.loads(
        wait_for_blob(buckets["predictions"], objects.rejected(today(), message_id, "feedback")).download_as_text()
    )
    assert [(e["index"], e["id"]) for e in rejected["errors"]] == [(2, "fb-3")]
    assert "'labels' is required" in rejected["errors"][0]["error"]
    # Two rows are too few: the retrain function records a skipped run with its reason.
    skipped = wait_until("a skipped run", lambda: [r for r in runs(buckets["models"]) if r["status"] == "skipped"])
    assert "fewer than SAIKIKA_RETRAIN_MIN_ROWS" in skipped[0]["reason"]


def test_the_loop_end_to_end(loop, buckets):
    data, models, predictions = buckets["data"], buckets["models"], buckets["predictions"]
    upload_rows(data, "training/base/catalogue.jsonl", catalogue.generate(1500, seed=7))
    v1 = wait_for_judged_champion(models, None, timeout_s=120)
    assert registry.read_decision(models, v1)["outcome"] == "promoted"
    assert "no usable champion" in registry.read_decision(models, v1)["reason"]

    publisher = loop.publisher()
    first = publish(loop, publisher, b'{"id": "w1", "title": "\xe9\x99\x90\xe5\xae\x9a\xe5\x93\x81 wireless speaker"}')
    [line] = wait_for_prediction_lines(predictions, first)
    assert line["model_version"] == v1
    assert "limited-edition" not in line["scores"]

    novel = list(catalogue.generate(400, seed=4242, features=ALL_FEATURES, id_prefix="novel", noise=0.0))
    for start in range(0, 400, 100):
        publish(
            loop,
            publisher,
            json.dumps({"items": [i.to_json() for i in novel[start : start + 100]]}, ensure_ascii=False).encode(),
            topic="feedback",
        )
    v2 = wait_for_judged_champion(models, v1, timeout_s=180)
    judged = registry.read_decision(models, v2)
    assert judged["outcome"] == "promoted", judged
    assert judged["champion_version"] == v1
    assert judged["candidate_metrics"]["micro_f1"] > judged["champion_metrics"]["micro_f1"]
    assert "evaluation slice" in judged["evaluated_on"]
    metadata = registry.read_metadata(models, v2)
    assert "limited-edition" in metadata["labels"]
    # The candidate carries its data's summary (digest, counts, the manifest it read, newest event), no object list.
    data = metadata["training_data"]
    assert len(data["digest"]) == 64 and data["manifest"].startswith(
        f"gs://{buckets['data'].name}/compacted/manifest.json#"
    )
    assert data["shards"] >= 1 and data["newest_event_time"] and "objects" not in data
    assert "training_objects" not in metadata
    for name in ("report/index.html", "report/roc.png", "report/scores.png", "model.skops"):
        assert models.get_blob(objects.version_prefix(v2) + name) is not None, name
    per_label = json.loads(models.blob(objects.version_prefix(v2) + "report/per_label.json").download_as_bytes())
    assert {"precision", "recall", "f1", "roc_auc", "support"} <= set(per_label["limited-edition"])

    # The predict instance swaps once its TTL has passed: ask it until an item is predicted by v2.
    def predicted_by_v2():
        message_id = publish(loop, publisher, '{"id": "w2", "title": "限定品 シリアルナンバー入り 腕時計"}'.encode())
        [line] = wait_for_prediction_lines(predictions, message_id)
        return line if line["model_version"] == v2 else None

    line = wait_until("an item predicted by v2", predicted_by_v2, timeout_s=60)
    assert "limited-edition" in line["labels"]


def test_a_burst_of_twenty_files_trains_at_most_twice_and_the_last_run_has_them_all(loop, buckets):
    data, models = buckets["data"], buckets["models"]
    before = {r["started_at"] for r in runs(models)}
    names = [f"training/burst/part-{i:02d}.jsonl" for i in range(20)]
    for i, name in enumerate(names):
        upload_rows(data, name, catalogue.generate(30, seed=500 + i, features=ALL_FEATURES, id_prefix=f"b{i}"))

    def settled():
        # Nothing pending (every burst object was taken by a run) and the last trained run judged.
        if any(True for _ in models.list_blobs(prefix=objects.RETRAIN_PENDING_PREFIX)):
            return None
        trained = [r for r in runs(models) if r["started_at"] not in before and r["status"] == "trained"]
        return (
            trained
            if trained and registry.read_decision(models, max(trained, key=lambda r: r["started_at"])["version"])
            else None
        )

    trained = wait_until("the burst trained and judged, nothing pending", settled, timeout_s=180)
    assert 1 <= len(trained) <= 2, [r["trigger"] for r in trained]
    # Deferring is an answer, not a failure: one log line each, never a traceback.
    log_text = (loop.state_dir / "logs" / "function-retrain.log").read_text()
    assert "retrain deferred" in log_text and "Traceback" not in log_text
    # The last run read every burst object: each is a loose object of its snapshot (base data stays in place).
    last = max(trained, key=lambda r: r["started_at"])
    assert last["training_data"]["loose_objects"] >= len(names)
    assert all(data.get_blob(name) is not None for name in names)


def test_a_weaker_candidate_is_rejected_and_the_champion_stays(loop, buckets, tmp_path):
    models = buckets["models"]
    champion_before = registry.read_champion(models)
    noisy = list(catalogue.generate(300, seed=77, noise=0.45))  # nearly half the labels are wrong
    files = training.serialize(training.train(noisy))
    artifact.write_dir(tmp_path / "weak", files)
    metadata = files.metadata
    result = saikika_cli(loop, "models", "push", str(tmp_path / "weak"))
    assert result.returncode == 0, result.stderr
    judged = wait_until("a decision on the weak model", lambda: registry.read_decision(models, metadata["version"]))
    assert judged["outcome"] == "rejected"
    assert "below the champion" in judged["reason"] or "regress" in judged["reason"]
    assert judged["candidate_metrics"] and judged["champion_metrics"]
    assert registry.read_champion(models).generation == champion_before.generation


def test_corrupted_and_untrusted_candidates_are_refused(loop, buckets, model_files):
    import io

    import skops.io as sio

    models = buckets["models"]
    data, metadata, _ = model_files
    champion_before = registry.read_champion(models)
    registry.push(models, data[:-5] + b"xxxxx", {**metadata, "version": "corrupted-1"})
    buffer = io.BytesIO()
    sio.dump({"payload": Exception("not a model")}, buffer)  # a type outside the trusted list
    untrusted = buffer.getvalue()
    registry.push(models, untrusted, {**metadata, "version": "untrusted-1", "sha256": artifact.sha256_hex(untrusted)})
    corrupted = wait_until("decision on corrupted-1", lambda: registry.read_decision(models, "corrupted-1"))
    refused = wait_until("decision on untrusted-1", lambda: registry.read_decision(models, "untrusted-1"))
    assert corrupted["outcome"] == "rejected" and "does not match" in corrupted["reason"]
    assert refused["outcome"] == "rejected" and "cannot be loaded safely" in refused["reason"]
    assert registry.read_champion(models).generation == champion_before.generation


def test_rollback_hot_swaps_predictors_with_no_failed_request(loop, buckets):
    models = buckets["models"]
    current = registry.read_champion(models)
    previous = current.history[-1].version
    url = loop.env["SAIKIKA_PREDICT_URL"]
    body = json.dumps({"instances": [{"id": "swap", "title": "防水 テント"}]}, ensure_ascii=False).encode()
    seen: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            sent_at = time.monotonic()  # a request's model is chosen when it arrives, not when it returns
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    seen.append((sent_at, response.status, json.loads(response.read())["model_version"]))
            except urllib.error.HTTPError as error:
                seen.append((sent_at, error.code, None))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        wait_until("requests served before the rollback", lambda: len(seen) >= 10, timeout_s=30)
        result = saikika_cli(loop, "models", "rollback")
        swapped_at = time.monotonic()
        assert result.returncode == 0, result.stderr
        wait_until(
            "requests sent after the swap and the TTL",
            lambda: sum(sent > swapped_at + TTL_S + 0.2 for sent, _, _ in seen) >= 10,
            timeout_s=30,
        )
    finally:
        stop.set()
        thread.join()
    assert registry.read_champion(models).version == previous
    assert seen and all(status == 200 for _, status, _ in seen), {s for _, s, _ in seen}
    assert {version for _, _, version in seen} == {current.version, previous}
    after_ttl = [version for sent_at, _, version in seen if sent_at > swapped_at + TTL_S + 0.2]
    assert after_ttl and set(after_ttl) == {previous}


def test_models_list_and_promote_by_hand(loop, buckets):
    models = buckets["models"]
    current = registry.read_champion(models)
    listing = saikika_cli(loop, "models", "list")
    assert listing.returncode == 0, listing.stderr
    assert current.version in listing.stdout and "★" in listing.stdout
    target = current.history[-1].version if current.history else None
    if target:
        result = saikika_cli(loop, "models", "promote", target)
        assert result.returncode == 0, result.stderr
        assert registry.read_champion(models).version == target
    assert saikika_cli(loop, "models", "promote", "no-such-version").returncode != 0


@pytest.mark.parametrize("body", [b'{"reason": "nightly"}', b'{"reason": "nightly-str", "force": "false"}'])
def test_periodic_request_without_new_data_trains_nothing(loop, buckets, body):
    """Only JSON true forces a run: {"force": "false"} once did."""
    before = len(runs(buckets["models"]))
    reason = json.loads(body)["reason"]
    publish(loop, loop.publisher(), body, topic="retrain-requests")
    wait_until(
        "the request to be handled",
        lambda: any(
            e.get("message") == "retrain not needed: nothing pending"
            and f"{reason}" == e.get("trigger", "").split(": ")[-1]
            for e in log_of(loop, "retrain")
        ),
    )
    assert len(runs(buckets["models"])) == before


def test_no_function_reacts_to_its_own_writes(loop, buckets):
    models = buckets["models"]
    # Every trained run was started by training data or a retrain request, never by a models-bucket write.
    for run in runs(models):
        assert run["trigger"].startswith(f"gs://{buckets['data'].name}/training/") or run["trigger"].startswith(
            "retrain-requests"
        ), run["trigger"]
    # Every committed version was judged exactly once, though the bucket saw many more writes.
    history = registry.decision_log(models)
    judged = [h.version for h in history if h.action is Action.JUDGE]
    assert sorted(judged) == sorted(set(judged))
    assert set(judged) == set(registry.versions(models))
    # The functions did see those writes (one topic carries every bucket's events) and ignored them.
    promote_ignored = {e["object"] for e in log_of(loop, "promote") if e.get("message", "").startswith("event ignored")}
    assert any(name.endswith("decision.json") for name in promote_ignored)
    assert "models/champion.json" in promote_ignored
    retrain_ignored = {e["object"] for e in log_of(loop, "retrain") if e.get("message", "").startswith("event ignored")}
    assert any(name.startswith("models/") for name in retrain_ignored)


def test_models_push_makes_the_promote_functions_checks_and_logs_its_decision(loop, buckets, tmp_path, model_files):
    """A model.npz whose weights were negated (checksums updated to match) was once promoted by `models push
    --promote`, with no history: the command now refuses it, and a good push --promote is logged."""
    from saikika.model import artifact
    from tests.tampering import negated_weights

    models = buckets["models"]
    before = champion_version(models)
    artifact.write_dir(tmp_path / "negated", negated_weights(model_files, version="negated-1"))
    result = saikika_cli(loop, "models", "push", str(tmp_path / "negated"), "--promote")
    assert result.returncode != 0 and "refused" in result.stderr, result.stderr
    assert champion_version(models) == before
    assert registry.read_metadata(models, "negated-1") is None  # not even uploaded

    artifact.write_dir(tmp_path / "good", model_files)
    result = saikika_cli(loop, "models", "push", str(tmp_path / "good"), "--promote")
    assert result.returncode == 0, result.stderr
    assert champion_version(models) == model_files.metadata["version"]
    assert any(
        d.version == model_files.metadata["version"] and d.action is Action.PROMOTE_BY_HAND
        for d in registry.decision_log(models)
    )
