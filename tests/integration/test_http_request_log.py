"""predict_http's request-response log: sampled online predictions land under predictions/ in the prediction
record's shape, written in batches off the request path, and what is buffered is written when the function is
stopped (SIGTERM). Real functions-framework process, real fake-gcs-server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from saikika.core import jsonl, objects, records
from saikika.core.drift import METADATA_KEY, LabelCounts
from saikika.tooling.polling import wait_until
from tests.integration.helpers import promote, start_stack, today

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def logging_stack(tmp_path_factory, model_files):
    running = start_stack(tmp_path_factory.mktemp("http-log"), SAIKIKA_HTTP_LOG_SAMPLING="1")
    try:
        promote(running, model_files)
        yield running
    finally:
        running.stop()


def post(stack, instances: list[dict]) -> dict:
    request = urllib.request.Request(
        stack.env["SAIKIKA_PREDICT_URL"],
        data=json.dumps({"instances": instances}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def logged_lines(stack) -> list[dict]:
    bucket = stack.storage_client().bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    prefix = f"predictions/dt={today():%Y-%m-%d}/{objects.HTTP_PREDICTIONS_MARK}"
    return [
        json.loads(line) for blob in bucket.list_blobs(prefix=prefix) for line in jsonl.lines(blob.download_as_text())
    ]


def test_online_predictions_are_logged_as_prediction_records(logging_stack, model_files):
    answer = post(logging_stack, [{"id": "L1", "title": "waterproof tent"}, {"id": "L2", "title": "retro lamp"}])
    lines = wait_until("the logged online predictions", lambda: logged_lines(logging_stack), 60, every_s=0.5)
    assert [line["id"] for line in lines] == ["L1", "L2"]
    for line, prediction in zip(lines, answer["predictions"]):
        assert set(line) == set(records.FIELDS) | {"request_id"}
        assert line["labels"] == prediction["labels"] and line["scores"] == prediction["scores"]
        assert line["model_version"] == model_files.metadata["version"]
    assert len({line["request_id"] for line in lines}) == 1  # one request
    # Each logged object carries its label counts as custom metadata, returned by a listing (label drift).
    bucket = logging_stack.storage_client().bucket(logging_stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    [blob] = bucket.list_blobs(prefix=f"predictions/dt={today():%Y-%m-%d}/{objects.HTTP_PREDICTIONS_MARK}")
    assert LabelCounts.from_metadata(blob.metadata[METADATA_KEY]) == LabelCounts.of(p["labels"] for p in lines)


def test_what_is_buffered_is_written_when_the_function_is_stopped(logging_stack):
    before = len(logged_lines(logging_stack))
    post(logging_stack, [{"id": "T1", "title": "waterproof boots"}])
    # SIGTERM at once, well inside the flush interval: the worker's exit writes the buffer.
    logging_stack.stop_function("predict_http")
    ids = [line["id"] for line in logged_lines(logging_stack)]
    assert len(ids) == before + 1 and ids.count("T1") == 1


def test_with_sampling_off_nothing_is_logged(logging_stack, model_files):
    import io

    from saikika.core.settings import Settings
    from saikika.handlers.predict_http import OnlinePredictor

    env = {**logging_stack.env, "SAIKIKA_HTTP_LOG_SAMPLING": "0"}
    online = OnlinePredictor(Settings.from_env(env), logging_stack.storage_client())
    body = io.BytesIO(b'{"instances": [{"id": "off", "title": "tent"}]}')
    assert online.respond("POST", None, body.read)[0] == 200
    assert online.prediction_log.flush() == 0
    with pytest.raises(ValueError, match="SAIKIKA_HTTP_LOG_SAMPLING must be at most 1"):
        Settings.from_env({**env, "SAIKIKA_HTTP_LOG_SAMPLING": "1.5"})
