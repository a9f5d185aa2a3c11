"""Batch prediction on the emulators: the `batch` function with the default settings (a file with good and bad
lines, a redelivered event, retrain ignoring batch/), a crash mid-file, the hand-off of a large file to a batch
job through the local launcher, re-score on promotion, and the Beam pipeline's scores against predict_http's."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime

import pytest

from saikika.cloud import batch_pipeline, gcs, registry
from saikika.core import jsonl, objects
from saikika.core.drift import METADATA_KEY, LabelCounts, LabelDrift
from saikika.core.events import ObjectEvent
from saikika.core.items import parse_item
from saikika.core.settings import Settings
from saikika.handlers.retrain import Retrainer
from saikika.model import artifact, catalogue
from saikika.tooling.local_stack import BUCKET_EVENTS_TOPIC, FUNCTIONS, LocalStack
from saikika.tooling.polling import wait_until
from tests.integration.helpers import REPO, promote, publish
from tests.livedoor import livedoor_item

pytestmark = pytest.mark.emulators

BAD_LINES = [b"not json", b'{"id": "no-text"}', b"\xff\xfe not utf-8", b"[" * 3000 + b"]" * 3000]


def catalogue_lines(count: int, seed: int, prefix: str) -> tuple[list[bytes], list[str]]:
    items = list(catalogue.generate(count, seed=seed))
    lines = [
        json.dumps(
            {"id": f"{prefix}-{i}", "title": item.title, "description": item.description, "tags": list(item.tags)},
            ensure_ascii=False,
        ).encode()
        for i, item in enumerate(items)
    ]
    return lines, [f"{prefix}-{i}" for i in range(count)]


def with_bad_lines(lines: list[bytes]) -> tuple[bytes, list[int]]:
    """The lines with BAD_LINES spread among them, and the bad ones' line numbers (1-based)."""
    out, bad_numbers = [], []
    step = max(1, len(lines) // len(BAD_LINES))
    for i, line in enumerate(lines):
        if i % step == step // 2 and len(bad_numbers) < len(BAD_LINES):
            out.append(BAD_LINES[len(bad_numbers)])
            bad_numbers.append(len(out))
        out.append(line)
    return b"\n".join(out) + b"\n", bad_numbers


def run_folder(data_bucket, name: str) -> tuple[str, str]:
    blob = data_bucket.get_blob(name)
    run_id = objects.batch_run_id(name, blob.generation)
    return objects.batch_run_folder(blob.time_created, run_id), objects.batch_errors_folder(blob.time_created, run_id)


def read_run(bucket, folder: str, errors: str) -> tuple[dict, list[dict], list[dict], dict[str, int]]:
    """_SUCCESS, prediction lines, error lines, and part → generation."""
    success = json.loads(bucket.blob(folder + objects.BATCH_SUCCESS_FILE).download_as_bytes())
    parts = {b.name: b for b in bucket.list_blobs(prefix=folder + "part-")}
    lines = [json.loads(line) for b in parts.values() for line in jsonl.lines(b.download_as_text())]
    bad = [json.loads(line) for b in bucket.list_blobs(prefix=errors) for line in jsonl.lines(b.download_as_text())]
    return success, lines, bad, {name: b.generation for name, b in parts.items()}


def redeliver(stack: LocalStack, bucket: str, name: str, generation: int) -> None:
    """The storage notification for `name` again, as Pub/Sub redelivers it."""
    publish(
        stack,
        stack.publisher(),
        json.dumps({"bucket": bucket, "name": name}).encode(),
        topic=BUCKET_EVENTS_TOPIC,
        eventType="OBJECT_FINALIZE",
        bucketId=bucket,
        objectId=name,
        objectGeneration=str(generation),
        payloadFormat="JSON_API_V1",
    )


def log_of(stack: LocalStack, function: str) -> list[dict]:
    text = (stack.state_dir / "logs" / f"function-{function}.log").read_text()
    return [json.loads(line) for line in jsonl.lines(text) if line.startswith("{")]


def run_drift(stack: LocalStack, run_id: str) -> LabelDrift:
    models = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
    found = wait_until(f"the drift of {run_id}", lambda: gcs.read_json(models, objects.batch_drift(run_id)))
    return LabelDrift.from_json(found[0])


def test_a_file_is_predicted_by_the_function_with_the_default_settings(stack, model_files):
    """The session stack runs every function with the default settings (4 MiB parts, 64 MiB bound)."""
    client = stack.storage_client()
    data = client.bucket(stack.env["SAIKIKA_DATA_BUCKET"])
    predictions = client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    lines, ids = catalogue_lines(400, seed=21, prefix="fn")
    body, bad_numbers = with_bad_lines(lines)
    name = "batch/input/shop-a.jsonl"
    data.blob(name).upload_from_string(body, content_type="application/x-ndjson")
    folder, errors = run_folder(data, name)
    wait_until("_SUCCESS", lambda: predictions.get_blob(folder + objects.BATCH_SUCCESS_FILE), timeout_s=90)

    success, predicted, bad, generations = read_run(predictions, folder, errors)
    assert (success["read"], success["predicted"], success["rejected"]) == (404, 400, 4)
    assert success["model_version"] == model_files.metadata["version"]
    assert list(generations) == [folder + objects.batch_part(0, 1)]
    assert sorted(line["id"] for line in predicted) == sorted(ids)
    assert {line["run_id"] for line in predicted} == {success["run_id"]}
    # The same labels and scores the predictors serve.
    served = artifact.load_inference(model_files.inference, model_files.metadata)
    by_id = {line["id"]: line for line in predicted}
    items = [json.loads(line) for line in lines]
    for item, prediction in zip(items, served.predict([parse_item(i) for i in items])):
        assert (by_id[item["id"]]["labels"], by_id[item["id"]]["scores"]) == (prediction.labels, prediction.scores)
    assert sorted(b["line"] for b in bad) == bad_numbers
    assert all(b["file"] == f"gs://{data.name}/{name}" and b["error"] for b in bad)
    # The part's label counts (custom metadata) and the run's drift object, from those counts.
    [part] = predictions.list_blobs(prefix=folder + objects.BATCH_PART_PREFIX)
    counts = LabelCounts.from_metadata(part.metadata[METADATA_KEY])
    assert counts == LabelCounts.of(line["labels"] for line in predicted)
    drift = run_drift(stack, success["run_id"])
    assert (drift.source, drift.run_id, drift.items, drift.objects) == ("batch", success["run_id"], 400, 1)
    assert drift.champion_version == model_files.metadata["version"]
    assert drift.baseline_shares == model_files.metadata["label_shares"]
    assert "not UTF-8" in next(b["error"] for b in bad if b["line"] == bad_numbers[2])

    # A redelivered event finds the run complete and rewrites nothing.
    redeliver(stack, data.name, name, data.get_blob(name).generation)
    wait_until(
        "the redelivery handled",
        lambda: any(
            e.get("message") == "batch run already complete" and e.get("object") == name for e in log_of(stack, "batch")
        ),
    )
    assert read_run(predictions, folder, errors)[3] == generations
    # Retraining ignores batch/: the local stack sends every bucket event to every storage-triggered function,
    # and the retrain function's handler answers this one with "ignored" (no listing, no run).
    with stack.client_environment():
        retrainer = Retrainer(Settings.from_env(stack.env), client)
    outcome = retrainer.on_object(ObjectEvent(data.name, name, data.get_blob(name).generation))
    assert outcome.status == "ignored"
    assert not any(name in str(e.get("trigger", "")) for e in log_of(stack, "retrain"))


@pytest.fixture(scope="module")
def small_parts(tmp_path_factory, model_files):
    """Only the batch function, with small parts (a crash lands mid-file) and a low bound (hand-off)."""
    stack = LocalStack(
        state_dir=tmp_path_factory.mktemp("batch"),
        functions_dir=REPO / "functions",
        functions=tuple(s for s in FUNCTIONS if s.name == "batch"),
        ack_deadline_s=10,
        extra_env={"SAIKIKA_BATCH_PART_BYTES": "4096", "SAIKIKA_BATCH_FUNCTION_MAX_BYTES": "1000000"},
    ).start()
    try:
        promote(stack, model_files)
        yield stack
    finally:
        stack.stop()


def upload_input(stack: LocalStack, name: str, items: int, seed: int):
    """A batch input of `items` catalogue lines with BAD_LINES among them: (data, predictions, ids, bad line
    numbers, input size)."""
    client = stack.storage_client()
    data = client.bucket(stack.env["SAIKIKA_DATA_BUCKET"])
    predictions = client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    lines, ids = catalogue_lines(items, seed=seed, prefix=name.rsplit("/", 1)[1].split(".")[0])
    body, bad_numbers = with_bad_lines(lines)
    data.blob(name).upload_from_string(body)
    return data, predictions, ids, bad_numbers, len(body)


def test_a_crash_mid_file_then_redelivery_yields_every_line_exactly_once(small_parts):
    stack = small_parts
    name = "batch/input/crash.jsonl"
    data, predictions, ids, bad_numbers, size = upload_input(stack, name, 3000, seed=22)
    assert size < 1000000
    folder, errors = run_folder(data, name)
    wait_until(
        "a few parts written",
        lambda: len(list(predictions.list_blobs(prefix=folder + "part-"))) >= 3,
        timeout_s=60,
        every_s=0.05,
    )
    stack.kill_function("batch")
    before = {b.name: b.generation for b in predictions.list_blobs(prefix=folder + "part-")}
    parts = -(-size // 4096)
    assert predictions.get_blob(folder + objects.BATCH_SUCCESS_FILE) is None and len(before) < parts, (
        "the function finished before it was killed: the test did not crash it mid-file"
    )
    stack.start_function("batch")  # Pub/Sub delivers the unacknowledged event again

    wait_until("_SUCCESS", lambda: predictions.get_blob(folder + objects.BATCH_SUCCESS_FILE), timeout_s=120)
    success, predicted, bad, generations = read_run(predictions, folder, errors)
    assert sorted(line["id"] for line in predicted) == sorted(ids)  # every line once: none lost, none twice
    assert sorted(b["line"] for b in bad) == bad_numbers
    assert (success["read"], success["predicted"], success["rejected"], success["shards"]) == (3004, 3000, 4, parts)
    assert len(generations) == parts
    # Finished parts were not redone.
    assert {n: generations[n] for n in before} == before
    finished = [
        e for e in log_of(stack, "batch") if e.get("message") == "batch file predicted" and e.get("object") == name
    ]
    assert finished and finished[-1]["parts_skipped"] >= len(before)
    # The run's label drift counts every item once: skipped parts from their metadata, the rest as predicted.
    assert run_drift(stack, success["run_id"]).items == 3000


def test_a_file_above_the_bound_is_handed_to_a_batch_job_once(small_parts):
    stack = small_parts
    name = "batch/input/big.jsonl"
    data, predictions, ids, bad_numbers, size = upload_input(stack, name, 5000, seed=23)
    assert size > 1000000
    folder, errors = run_folder(data, name)
    run_record = wait_until(
        "launched",
        lambda: (
            (found := predictions.get_blob(folder + objects.BATCH_RUN_FILE))
            and json.loads(found.download_as_bytes()).get("state") == "launched"
            and found
        ),
        timeout_s=60,
    )
    record = json.loads(run_record.download_as_bytes())
    assert record["launcher"] == "local" and record["job_id"].startswith("local-")
    # The job (a DirectRunner process) writes the same layout, _SUCCESS last.
    wait_until("the job's _SUCCESS", lambda: predictions.get_blob(folder + objects.BATCH_SUCCESS_FILE), timeout_s=300)
    success, predicted, bad, _ = read_run(predictions, folder, errors)
    assert sorted(line["id"] for line in predicted) == sorted(ids)
    assert (success["read"], success["predicted"], success["rejected"]) == (5004, 5000, 4)
    assert sorted(b["line"] for b in bad) == bad_numbers
    # The job keeps the run's label counts (counters, no second pass) and writes its label drift.
    assert LabelCounts.from_metadata(json.dumps(success["label_counts"])) == LabelCounts.of(
        line["labels"] for line in predicted
    )
    found = run_drift(stack, success["run_id"])
    assert (found.source, found.items, found.champion_version) == ("batch", 5000, success["model_version"])
    # A redelivered event launches nothing new: the run record keeps its generation and job id.
    generation = predictions.get_blob(folder + objects.BATCH_RUN_FILE).generation
    redeliver(stack, data.name, name, data.get_blob(name).generation)
    wait_until(
        "the redelivery handled",
        lambda: (
            sum(
                e.get("message") in ("batch run already complete", "batch file handed to a batch job")
                and e.get("object") == name
                for e in log_of(stack, "batch")
            )
            >= 2
        ),
    )
    assert predictions.get_blob(folder + objects.BATCH_RUN_FILE).generation == generation


def test_batch_pipeline_scores_equal_predict_http(stack, corpus_records, tmp_path):
    """A few thousand livedoor articles through the Beam pipeline (DirectRunner, reading gs:// from fake-gcs)
    and through the live predict_http: the same labels and the same scores for every item."""
    items = [livedoor_item(r) for r in corpus_records[:2000]]
    client = stack.storage_client()
    data = client.bucket(stack.env["SAIKIKA_DATA_BUCKET"])
    models = client.bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
    champion = registry.read_champion(models)
    lines = [
        json.dumps({"id": i.id, "title": i.title, "description": i.description}, ensure_ascii=False) for i in items
    ]
    data.blob("catalogue/livedoor.jsonl").upload_from_string("\n".join(lines) + "\n")
    with stack.client_environment():
        success = batch_pipeline.run(
            f"gs://{data.name}/catalogue/*.jsonl",
            str(tmp_path / "out"),
            f"gs://{models.name}/{objects.version_prefix(champion.version)}",
            expected_sha256=champion.inference_sha256,
        )
    assert success["predicted"] == len(items)
    batch = {
        line["id"]: line
        for part in (tmp_path / "out").glob("part-*.jsonl")
        for line in map(json.loads, jsonl.lines(part.read_text()))
    }
    served, versions = {}, set()
    for start in range(0, len(lines), 100):
        body = json.dumps({"instances": [json.loads(line) for line in lines[start : start + 100]]}, ensure_ascii=False)
        request = urllib.request.Request(
            stack.env["SAIKIKA_PREDICT_URL"], data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        served.update({p["id"]: p for p in answer["predictions"]})
        versions.add(answer["model_version"])
    assert set(batch) == set(served) == {i.id for i in items}
    worst = max(abs(batch[i]["scores"][label] - score) for i in served for label, score in served[i]["scores"].items())
    assert worst <= 1e-9
    assert all(batch[i]["labels"] == served[i]["labels"] for i in served)
    assert versions == {line["model_version"] for line in batch.values()} == {champion.version}


def test_rescore_on_promotion_scores_the_catalogue_with_the_new_champion(tmp_path, trained_small):
    from saikika.model import training

    catalogue_pattern = "gs://saikika-data/catalogue/*.jsonl"
    stack = LocalStack(
        state_dir=tmp_path,
        functions_dir=REPO / "functions",
        functions=tuple(s for s in FUNCTIONS if s.name == "promote"),
        extra_env={"SAIKIKA_RESCORE_INPUT": catalogue_pattern},
    ).start()
    try:
        client = stack.storage_client()
        data = client.bucket(stack.env["SAIKIKA_DATA_BUCKET"])
        models = client.bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
        predictions = client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
        lines, ids = catalogue_lines(300, seed=24, prefix="cat")
        data.blob("catalogue/part-1.jsonl").upload_from_string(b"\n".join(lines) + b"\n")
        files = training.serialize(trained_small)  # a fresh version: promote judges it and, with no champion, promotes
        version = registry.push(models, *files)
        decision = wait_until("judged", lambda: registry.read_decision(models, version), timeout_s=120)
        assert decision["outcome"] == "promoted"
        run_id = f"rescore-{version}"
        day = datetime.fromisoformat(decision["decided_at"])
        folder = objects.batch_run_folder(day, run_id)
        success = json.loads(
            wait_until(
                "the re-score's _SUCCESS",
                lambda: predictions.get_blob(folder + objects.BATCH_SUCCESS_FILE),
                timeout_s=300,
            ).download_as_bytes()
        )
        assert (success["predicted"], success["model_version"], success["input"]) == (300, version, catalogue_pattern)
        predicted = [
            json.loads(line)
            for b in predictions.list_blobs(prefix=folder + "part-")
            for line in jsonl.lines(b.download_as_text())
        ]
        assert sorted(line["id"] for line in predicted) == sorted(ids)
        record = json.loads(predictions.blob(folder + objects.BATCH_RUN_FILE).download_as_bytes())
        assert record["state"] == "launched" and record["launcher"] == "local"
    finally:
        stack.stop()
