"""A stack of its own that starts with no champion: retries, dead letters, a refused model, then service.

The steps share one stack and run in file order.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from saikika.cloud import registry
from saikika.model import artifact
from saikika.tooling.local_stack import dead_letter_topic
from saikika.tooling.polling import wait_until
from tests.integration.helpers import promote, publish, start_stack, wait_for_prediction_lines

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def empty_stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("lifecycle"), SAIKIKA_MODEL_TTL_S="0.5")
    yield running
    running.stop()


def _http(stack) -> tuple[int, dict]:
    request = urllib.request.Request(
        stack.env["SAIKIKA_PREDICT_URL"],
        method="POST",
        data=b'{"instances": [{"id": "a", "title": "t"}]}',
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_without_champion_http_is_503_and_health_says_not_ready(empty_stack):
    status, body = _http(empty_stack)
    assert status == 503 and body["error"]["code"] == "no_model"
    with urllib.request.urlopen(empty_stack.env["SAIKIKA_PREDICT_URL"], timeout=30) as response:
        health = json.loads(response.read())
    assert health["ready"] is False and health["model_version"] is None


def test_without_champion_messages_are_retried_then_dead_lettered(empty_stack):
    publisher, subscriber = empty_stack.publisher(), empty_stack.subscriber()
    payload = b'{"id": "early", "title": "waterproof tent"}'
    publish(empty_stack, publisher, payload)
    keep = subscriber.subscription_path(empty_stack.project, dead_letter_topic("items", "predict") + "-keep")
    deadline = time.monotonic() + 120
    received = []
    while not received and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": keep, "max_messages": 10}, timeout=10)
        # The dead-letter topic gives the message an id of its own: match it by content.
        received = [m for m in response.received_messages if m.message.data == payload]
    assert received, "the message never reached the dead-letter topic"
    attributes = dict(received[0].message.attributes)
    assert attributes.get("CloudPubSubDeadLetterSourceDeliveryCount") == "5"
    assert attributes.get("CloudPubSubDeadLetterSourceSubscription") == "items-to-predict"
    log = (empty_stack.state_dir / "logs" / "function-predict.log").read_text()
    assert log.count("no champion model has been promoted yet") >= 5


def test_tampered_champion_is_refused(empty_stack, model_files):
    data, metadata, arrays = model_files
    bucket = empty_stack.storage_client().bucket(empty_stack.env["SAIKIKA_MODELS_BUCKET"])
    tampered = {**metadata, "version": "tampered-1"}
    # Predictors serve the inference arrays: tamper with those (the skops file is the promote function's).
    registry.push(bucket, data, tampered, arrays[:-4] + b"evil")
    registry.set_champion(bucket, tampered, registry.read_champion(bucket), reason="test: tampered")
    # Once its TTL has passed the instance reads the new pointer, refuses the version, and has nothing else.
    status, body = wait_until("the tampered champion to be refused", lambda: _refused(empty_stack), timeout_s=30)
    assert status == 503
    assert "does not match" in body["error"]["message"]


def _refused(stack) -> tuple[int, dict] | None:
    status, body = _http(stack)
    return (status, body) if status == 503 and "does not match" in body["error"]["message"] else None


def test_message_retried_until_a_champion_appears_is_predicted(empty_stack, model_files):
    publisher = empty_stack.publisher()
    predictions = empty_stack.storage_client().bucket(empty_stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    log = empty_stack.state_dir / "logs" / "function-predict.log"
    failures_before = log.read_text().count("no champion model has been promoted yet")
    message_id = publish(empty_stack, publisher, b'{"id": "patient", "title": "wireless keyboard"}')
    wait_until(
        "a failed delivery first",
        lambda: log.read_text().count("no champion model has been promoted yet") > failures_before,
        timeout_s=30,
    )
    promote(empty_stack, model_files)
    [line] = wait_for_prediction_lines(predictions, message_id)
    assert line["model_version"] == model_files[1]["version"]
    status, body = _http(empty_stack)
    assert status == 200 and body["model_version"] == model_files[1]["version"]


def test_a_broken_new_champion_leaves_the_current_model_serving(empty_stack, model_files):
    data, metadata, _ = model_files
    bucket = empty_stack.storage_client().bucket(empty_stack.env["SAIKIKA_MODELS_BUCKET"])
    broken = {**metadata, "version": "broken-2", "sha256": artifact.sha256_hex(b"corrupt")}
    registry.push(bucket, b"corrupt", broken)
    registry.set_champion(bucket, broken, registry.read_champion(bucket), reason="test: corrupted")
    http_log = empty_stack.state_dir / "logs" / "function-predict_http.log"
    refused_before = http_log.read_text().count("champion model refused")
    # Requests past the TTL make the instance read the pointer and refuse the broken version.
    wait_until(
        "the broken champion to be refused",
        lambda: _http(empty_stack) and http_log.read_text().count("champion model refused") > refused_before,
        timeout_s=30,
    )
    for _ in range(5):
        status, body = _http(empty_stack)
        assert status == 200 and body["model_version"] == metadata["version"]
    log = (empty_stack.state_dir / "logs" / "function-predict_http.log").read_text()
    assert "champion model refused" in log
