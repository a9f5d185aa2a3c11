"""Batch prediction on Apache Beam's DirectRunner, on local files: the output layout, bad lines kept with their
file and line, scores equal to what the predictors serve, and models refused as predictors refuse them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from saikika.cloud import batch_pipeline, launchers
from saikika.core import jsonl, objects
from saikika.core.drift import LabelCounts, LabelDrift
from saikika.core.errors import ModelIntegrityError
from saikika.handlers.batch import parts_of
from saikika.model import artifact, catalogue
from tests.tampering import negated_weights

BAD_LINES = ["not json", '{"id": "no-text"}', "[" * 5000 + "]" * 5000]


@pytest.fixture
def catalogue_file(tmp_path) -> tuple[Path, list]:
    items = list(catalogue.generate(300, seed=4))
    path = tmp_path / "in" / "catalogue.jsonl"
    path.parent.mkdir()
    lines = [
        json.dumps({k: v for k, v in item.to_json().items() if k != "labels"}, ensure_ascii=False) for item in items
    ]
    path.write_text("\n".join(lines[:150] + BAD_LINES[:1] + lines[150:] + BAD_LINES[1:]) + "\n", encoding="utf-8")
    return path, items


def test_a_catalogue_is_predicted_as_the_predictors_would(tmp_path, catalogue_file, model_files):
    path, items = catalogue_file
    artifact.write_dir(tmp_path / "model", model_files)
    out = tmp_path / "out"
    success = batch_pipeline.run(
        str(tmp_path / "in" / "*.jsonl"), str(out), str(tmp_path / "model"), pipeline_args=["--runner=DirectRunner"]
    )
    assert (success["read"], success["predicted"], success["rejected"]) == (303, 300, 3)
    assert json.loads((out / "_SUCCESS").read_text()) == success
    parts = sorted(out.glob("part-*-of-*.jsonl"))
    assert parts and all(p.name.startswith("part-0000") for p in parts)
    lines = [json.loads(line) for part in parts for line in jsonl.lines(part.read_text())]
    assert sorted(line["id"] for line in lines) == sorted(item.id for item in items)
    assert {line["run_id"] for line in lines} == {success["run_id"]}
    assert {line["model_version"] for line in lines} == {model_files.metadata["version"]}
    # The same scores and labels the event path serves for the same items and version.
    served = artifact.load_inference(model_files.inference, model_files.metadata)
    by_id = {line["id"]: line for line in lines}
    for item, prediction in zip(items, served.predict(items)):
        assert by_id[item.id]["labels"] == prediction.labels
        assert by_id[item.id]["scores"] == prediction.scores
    errors = [
        json.loads(line) for part in (out / "errors").glob("part-*.jsonl") for line in jsonl.lines(part.read_text())
    ]
    assert sorted(e["line"] for e in errors) == [151, 302, 303]
    assert all(e["file"].endswith("catalogue.jsonl") and e["error"] for e in errors)
    # The run's label counts, kept as counters while the lines were formatted.
    assert success["label_counts"] == LabelCounts.of(line["labels"] for line in lines).to_json()


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda files: files._replace(inference=files.inference[:-4] + b"evil"), "does not match"),
        (lambda files: _pickled(files), "cannot be loaded"),
    ],
)
def test_a_tampered_or_pickled_model_is_refused(tmp_path, catalogue_file, model_files, tamper, message):
    artifact.write_dir(tmp_path / "model", tamper(model_files))
    with pytest.raises(Exception) as raised:
        batch_pipeline.run(str(catalogue_file[0]), str(tmp_path / "out"), str(tmp_path / "model"))
    assert message in str(raised.value)
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def _pickled(files):
    buffer = io.BytesIO()
    np.savez(buffer, idf=np.array([object()], dtype=object))  # loading it would need pickle
    arrays = buffer.getvalue()
    return files._replace(
        inference=arrays,
        metadata={
            **files.metadata,
            "inference": {**files.metadata["inference"], "sha256": artifact.sha256_hex(arrays)},
        },
    )


def test_the_handler_refuses_a_model_whose_scores_were_altered_only_where_the_checksum_is_pinned(tmp_path, model_files):
    """With checksums updated to match, only the champion pointer's sha256 (passed by `--model champion`) catches
    a replaced model.npz."""
    artifact.write_dir(tmp_path / "model", negated_weights(model_files))
    handler = batch_pipeline.InferenceArtifactHandler(
        str(tmp_path / "model"), expected_sha256=model_files.metadata["inference"]["sha256"]
    )
    with pytest.raises(ModelIntegrityError, match="champion pointer"):
        handler.load_model()


def _saikika_batch(tmp_path, input_file, model_dir, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "saikika.tooling.cli", *options, "batch", "--input", str(input_file)]
        + ["--output", str(tmp_path / "out"), "--model", str(model_dir), "--direct_num_workers=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_saikika_batch_command(tmp_path, catalogue_file, model_files):
    artifact.write_dir(tmp_path / "model", model_files)
    result = _saikika_batch(tmp_path, catalogue_file[0], tmp_path / "model")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["predicted"] == 300
    # Progress as it goes, in train's style; none of Beam's start-up warnings (they show with --debug).
    told = result.stderr
    assert "items predicted" in told and "300/?" in told and "lines rejected" in told, told
    assert not any(noise in told for noise in ("apitools", "Resource module", "WARNING")), told
    debugged = _saikika_batch(tmp_path, catalogue_file[0], tmp_path / "model", "--debug")
    assert debugged.returncode == 0 and "apitools not found" in debugged.stderr


def test_saikika_batch_tells_a_refused_model_in_one_line(tmp_path, catalogue_file, model_files):
    artifact.write_dir(tmp_path / "model", model_files._replace(inference=model_files.inference[:-4] + b"evil"))
    result = _saikika_batch(tmp_path, catalogue_file[0], tmp_path / "model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: inference file sha256") and "does not match" in last, last


def test_a_run_tells_its_progress_and_writes_no_errors_file_when_nothing_was_rejected(
    tmp_path, catalogue_file, model_files
):
    artifact.write_dir(tmp_path / "model", model_files)
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps({"id": f"i{n}", "title": f"item {n}"}) + "\n" for n in range(40)))
    for source, folder, expected in (
        (catalogue_file[0], "with-bad", {"read": 303, "rejected": 3, "predicted": 300}),
        (clean, "clean", {"read": 40, "predicted": 40}),
    ):
        events: list[str] = []
        batch_pipeline.run(str(source), str(tmp_path / folder), str(tmp_path / "model"), progress=events.append)
        assert Counter(events) == expected
        errors = list((tmp_path / folder).glob("errors/part-*.jsonl"))
        assert len(errors) == (1 if "rejected" in expected else 0), errors
        assert sorted((tmp_path / folder).glob("part-*.jsonl"))  # the predictions' parts are always there


# ---- the function's parts: every line exactly once, in order, with its number ------------------------


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    final_newline=st.booleans(),
    part_bytes=st.integers(1, 200),
    chunk=st.integers(1, 64),
)
def test_parts_hold_every_line_once_in_the_part_of_its_first_byte(lines, final_newline, part_bytes, chunk):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    count = max(1, -(-len(data) // part_bytes))
    parts = list(parts_of(iter([data[i : i + chunk] for i in range(0, len(data), chunk)]), part_bytes, count))
    assert [p.index for p in parts] == list(range(count))
    got = [line for p in parts for line in p.lines]
    expected = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        expected = expected[:-1]
    assert got == expected
    assert [p.first_line + i for p in parts for i in range(len(p.lines))] == list(range(1, len(got) + 1))
    offset = 0
    for p in parts:  # each line sits in the part its first byte falls in
        for line in p.lines:
            assert min(count - 1, offset // part_bytes) == p.index
            offset += len(line) + 1


def test_run_layout_is_one_folder_per_input_generation():
    from datetime import datetime

    day = datetime(2026, 11, 29, tzinfo=UTC)
    run_id = objects.batch_run_id("batch/input/shop a/β.jsonl", 1764400000000001)
    assert run_id == "shop_a__-g1764400000000001"  # made safe for object names and BigQuery's run column
    assert objects.batch_run_folder(day, run_id).startswith("batch/dt=2026-11-29/run=")
    assert objects.batch_errors_folder(day, run_id).startswith("rejected/batch/dt=2026-11-29/run=")
    assert objects.batch_part(3, 12) == "part-00003-of-00012.jsonl"
    assert objects.is_batch_input("batch/input/a.jsonl") and not objects.is_training_object("batch/input/a.jsonl")
    assert not objects.is_batch_input("training/a.jsonl")


def test_the_entry_point_takes_the_launchers_arguments(tmp_path, catalogue_file, model_files):
    artifact.write_dir(tmp_path / "model", model_files)
    job = launchers.BatchJob(
        "r1",
        str(catalogue_file[0]),
        str(tmp_path / "out"),
        str(tmp_path / "bad"),
        str(tmp_path / "model"),
        drift_output=str(tmp_path / "drift.json"),
        drift_bound=0.25,
    )
    success = batch_pipeline.main([*job.arguments(), "--runner=DirectRunner"])
    assert (success["run_id"], success["predicted"], success["rejected"]) == ("r1", 300, 3)
    drift = LabelDrift.from_json(json.loads((tmp_path / "drift.json").read_text()))
    assert (drift.source, drift.run_id, drift.items, drift.bound) == ("batch", "r1", 300, 0.25)
    assert drift.baseline_shares == model_files.metadata["label_shares"]
    assert len(list((tmp_path / "bad").glob("part-*.jsonl"))) == 1
