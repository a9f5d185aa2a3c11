"""The command line on the emulators, as a person runs it: `models list` tells what happened to each version
(promoted by push, rejected then promoted by hand, rolled back) in a table that fits the terminal, and `batch
--model` that is neither a folder nor a version says what it tried."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from saikika.cloud import registry
from saikika.core.decisions import Action, Decision, Outcome
from saikika.model import artifact, catalogue, training

pytestmark = pytest.mark.emulators

WHY = (
    "candidate micro F1 0.5012 is below the champion's 0.9311 by more than the margin 0.005 on 412 evaluation "
    "rows; macro F1 0.4800 against 0.9100; every label lost"
)


@pytest.fixture
def models_bucket(stack, storage_client):
    """A models bucket of its own: the stack's promote function judges only the stack's."""
    return storage_client.create_bucket(f"models-{uuid.uuid4().hex[:10]}")


def saikika(stack, bucket, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.env, "SAIKIKA_MODELS_BUCKET": bucket.name, "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "saikika.tooling.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_models_list_tells_each_versions_story_in_100_columns(stack, models_bucket, tmp_path):
    first, second = (training.serialize(training.train(list(catalogue.generate(300, seed=s)))) for s in (51, 52))
    for name, files in (("first", first), ("second", second)):
        artifact.write_dir(tmp_path / name, files)
    v1, v2 = first.metadata["version"], second.metadata["version"]
    assert saikika(stack, models_bucket, "models", "push", str(tmp_path / "first"), "--promote").returncode == 0
    assert saikika(stack, models_bucket, "models", "push", str(tmp_path / "second")).returncode == 0
    registry.write_verdict(models_bucket, Decision(v2, Action.JUDGE, Outcome.REJECTED, reason=WHY))
    promoted = saikika(stack, models_bucket, "models", "promote", v2)
    assert promoted.returncode == 0, promoted.stderr

    listing = saikika(stack, models_bucket, "models", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    row_of = {v: next(n for n, line in enumerate(lines) if v in line) for v in (v1, v2)}
    assert lines[row_of[v2]].startswith(f"★ {v2}") and not lines[row_of[v1]].startswith("★")
    column = next(line.index("decision (why)") for line in lines if "decision (why)" in line)
    below_v2 = " ".join(" ".join(line[column:].split()) for line in lines[row_of[v2] : row_of[v2] + 12])
    assert "rejected → promoted by hand" in below_v2 and " ".join(WHY.split()) in below_v2
    assert "promoted by push" in lines[row_of[v1]]

    assert saikika(stack, models_bucket, "models", "rollback").returncode == 0
    after = saikika(stack, models_bucket, "models", "list").stdout
    assert "promoted by push → restored by rollback" in " ".join(after.split())
    assert "rejected → promoted by hand → rolled back" in " ".join(after.split())


def test_batch_with_a_model_that_is_neither_folder_nor_version_says_what_it_tried(stack, models_bucket, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": "a", "title": "t"}\n')
    result = saikika(
        stack, models_bucket, "batch", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
        "--model", "nomodel/",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: no model folder nomodel/ and no version 'nomodel/' in gs://{models_bucket.name}/models/: pass a "
        "folder `saikika train --out` wrote, a version `saikika models list` shows, or champion"
    )


def test_batch_from_a_bucket_that_does_not_exist_says_so_in_one_line(stack, models_bucket):
    # As docs/batch.md's example reads before its placeholder is replaced (gs://DATA/...).
    result = saikika(stack, models_bucket, "batch", "--input", "gs://DATA/catalogue/*.jsonl")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip() == "Error: no bucket gs://DATA (in --input gs://DATA/catalogue/*.jsonl): check its name"
    )


def test_a_local_batch_into_the_stacks_bucket_is_quiet_and_shows_progress(stack, storage_client, tmp_path):
    """The default path a user runs: the champion, output into the predictions bucket (Beam's GCS file system,
    google-auth's credentials lookup): progress on stderr, none of the libraries' start-up warnings, and no
    errors object when nothing was rejected."""
    (tmp_path / "in.jsonl").write_text("".join(f'{{"id": "q{n}", "title": "item {n}"}}\n' for n in range(20)))
    models = storage_client.bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
    result = saikika(stack, models, "batch", "--input", str(tmp_path / "in.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "items predicted" in result.stderr and "20/?" in result.stderr
    assert "WARNING" not in result.stderr and "credentials" not in result.stderr, result.stderr
    run_id = result.stderr.split("batch ", 1)[1].split(":", 1)[0]
    predictions = storage_client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    written = [blob.name for blob in predictions.list_blobs() if run_id in blob.name]
    assert any(name.endswith("_SUCCESS") for name in written)
    assert written and not [name for name in written if "errors" in name or "rejected" in name], written
