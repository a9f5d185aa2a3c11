"""Retraining with title word vectors on the emulators: an engineer pushes a vectors file with the CLI and sets
the two settings it prints; the loop refuses a file whose checksum does not match (a failed run with its reason),
then trains, promotes and serves a model of inference format v4 with the right one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saikika.cloud import registry
from saikika.core import objects, rows
from saikika.model import catalogue, inference_artifact
from saikika.model.artifact import sha256_hex
from saikika.model.word_vectors import WordVectors
from tests.integration.helpers import publish, saikika_cli, start_stack, wait_for_prediction_lines, wait_until

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def vectors_file(tmp_path_factory) -> Path:
    words = sorted({w for item in catalogue.generate(600, seed=3) for w in item.title.split()})
    table = np.random.default_rng(4).normal(size=(len(words), 16)).astype(np.float16)
    path = tmp_path_factory.mktemp("vectors") / "catalogue-words.npz"
    path.write_bytes(WordVectors.from_words(words, np.arange(len(words)), table).to_bytes())
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory, vectors_file):
    digest = sha256_hex(vectors_file.read_bytes())
    running = start_stack(
        tmp_path_factory.mktemp("word-vectors-loop"),
        retrain_tick_s=1.0,
        SAIKIKA_MODEL_TTL_S="1",
        SAIKIKA_RETRAIN_MIN_INTERVAL_S="2",
        SAIKIKA_RETRAIN_SETTLE_S="1",
        SAIKIKA_WORD_VECTORS=f"{objects.WORD_VECTORS_PREFIX}{vectors_file.stem}-{digest[:12]}.npz",
        SAIKIKA_WORD_VECTORS_SHA256=digest,
    )
    yield running
    running.stop()


def run_records(models_bucket) -> list[dict]:
    return [json.loads(b.download_as_bytes()) for b in models_bucket.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX)]


def test_retraining_uses_the_pushed_word_vectors_and_refuses_a_mismatched_file(stack, vectors_file):
    client = stack.storage_client()
    data, models = (client.bucket(stack.env[f"SAIKIKA_{k}_BUCKET"]) for k in ("DATA", "MODELS"))
    predictions = client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    name = stack.extra_env["SAIKIKA_WORD_VECTORS"]

    # Another file at the configured name: the run fails with the reason and trains nothing.
    models.blob(name).upload_from_string(b"not the vectors the settings name")
    data.blob("training/base/a.jsonl").upload_from_string(rows.dumps(catalogue.generate(1500, seed=7)))
    failed = wait_until("a failed run", lambda: [r for r in run_records(models) if r["status"] == "failed"], 90)
    assert "does not match" in failed[0]["reason"] and "SAIKIKA_WORD_VECTORS_SHA256" in failed[0]["reason"]
    assert registry.read_champion(models) is None
    models.blob(name).delete()

    # The engineer's way: the CLI uploads the file and prints the settings the stack was started with.
    pushed = saikika_cli(stack, "word-vectors", "push", str(vectors_file))
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.split() == [
        f"SAIKIKA_WORD_VECTORS={name}",
        f"SAIKIKA_WORD_VECTORS_SHA256={stack.extra_env['SAIKIKA_WORD_VECTORS_SHA256']}",
    ]
    data.blob("training/base/b.jsonl").upload_from_string(rows.dumps(catalogue.generate(300, seed=8, id_prefix="b")))
    version = wait_until("a champion", lambda: (c := registry.read_champion(models)) and c.version, 120)
    metadata = registry.read_metadata(models, version)
    assert metadata["inference"]["format"] == inference_artifact.FORMAT_WORDS
    assert metadata["training_config"]["word_vectors"]["dimensions"] == 16

    message_id = publish(stack, stack.publisher(), '{"id": "v1", "title": "防水 ワイヤレス スピーカー"}'.encode())
    [line] = wait_for_prediction_lines(predictions, message_id)
    assert line["model_version"] == version and line["scores"]
