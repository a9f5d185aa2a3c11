"""Items published to the emulator become predictions objects, through the real predict function."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from saikika.core import jsonl, objects
from saikika.core.drift import METADATA_KEY, LabelCounts
from saikika.core.items import MESSAGE_MAX_BYTES, parse_item
from saikika.model import artifact
from tests.integration.helpers import gcloud_publish, publish, today, wait_for_prediction_lines, wait_for_rejected

pytestmark = pytest.mark.emulators


def test_single_item_published_with_gcloud_cli(stack, predictions_bucket, model_files):
    item = {"id": "cli-1", "title": "防水 ワイヤレス スピーカー", "description": "Bluetooth対応", "tags": ["audio"]}
    message_id = gcloud_publish(stack, "items", json.dumps(item, ensure_ascii=False))
    [line] = wait_for_prediction_lines(predictions_bucket, message_id)
    assert set(line) == {"id", "labels", "scores", "model_version", "message_id", "predicted_at"}
    assert line["id"] == "cli-1"
    assert line["message_id"] == message_id
    assert line["model_version"] == model_files[1]["version"]
    assert set(line["scores"]) == set(model_files[1]["labels"])
    # The labels and scores the model gives this item in process, through the function unchanged.
    [expected] = artifact.load_inference(model_files.inference, model_files.metadata).predict([parse_item(item)])
    assert (line["labels"], line["scores"]) == (expected.labels, expected.scores)
    assert "wireless" in line["labels"]


def test_thousand_item_message_becomes_one_object_in_order(stack, publisher, predictions_bucket):
    items = [{"id": f"bulk-{i:04d}", "title": f"vintage handmade mug no. {i}", "tags": ["mug"]} for i in range(1000)]
    message_id = publish(stack, publisher, json.dumps({"items": items}).encode())
    lines = wait_for_prediction_lines(predictions_bucket, message_id)
    assert [line["id"] for line in lines] == [item["id"] for item in items]
    assert all({"handmade", "vintage"} <= set(line["labels"]) for line in lines)
    # The object's label counts ride along as custom metadata, and a listing returns them (label drift).
    [listed] = predictions_bucket.list_blobs(prefix=objects.predictions(today(), message_id))
    counts = LabelCounts.from_metadata(listed.metadata[METADATA_KEY])
    assert counts == LabelCounts.of(line["labels"] for line in lines)
    assert counts.items == 1000 and counts.labels["handmade"] == 1000
    assert not predictions_bucket.get_blob(objects.rejected(today(), message_id))


def _push_envelope(message_id: str, data: bytes, publish_time: str) -> bytes:
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": message_id,
                "publishTime": publish_time,
                "attributes": {},
            },
            "subscription": "projects/saikika-local/subscriptions/items-to-predict",
        }
    ).encode()


def test_redelivery_changes_nothing(stack, publisher, predictions_bucket):
    payload = json.dumps({"id": "dup-1", "title": "中古 レトロ カメラバッグ"}, ensure_ascii=False).encode()
    message_id = publish(stack, publisher, payload)
    wait_for_prediction_lines(predictions_bucket, message_id)
    blob = predictions_bucket.get_blob(objects.predictions(today(), message_id))
    first_generation, first_text = blob.generation, blob.download_as_text()

    # Pub/Sub redelivers by pushing the same envelope (same message id) again.
    publish_time = json.loads(first_text)["predicted_at"]
    endpoint = f"{stack.env['SAIKIKA_URL_PREDICT']}/projects/{stack.project}/topics/items"
    for _ in range(2):
        request = urllib.request.Request(
            endpoint,
            data=_push_envelope(message_id, payload, publish_time),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status < 300  # acknowledged, not retried

    again = predictions_bucket.get_blob(objects.predictions(today(), message_id))
    assert (again.generation, again.download_as_text()) == (first_generation, first_text)
    same_id = [
        b.name for b in predictions_bucket.list_blobs(prefix="predictions/") if b.name.endswith(f"/{message_id}.jsonl")
    ]
    assert len(same_id) == 1


MALFORMED = {
    "not_json": (b"this is not json", "not JSON"),
    "not_utf8": (b"\xff\xfe\xfa binary", "not UTF-8"),
    "array": (b"[1, 2, 3]", "expected an item object"),
    "items_not_list": (b'{"items": "x"}', "must be an array"),
    "items_empty": (b'{"items": []}', "1 to 1000"),
    "too_many_items": (json.dumps({"items": [{"id": str(i), "title": "t"} for i in range(1001)]}).encode(), "got 1001"),
    "too_large": (
        json.dumps({"id": "big", "description": "x" * (MESSAGE_MAX_BYTES + 10)}).encode(),
        "more than the limit",
    ),
    "missing_id": (b'{"title": "no id"}', "'id' must be a string"),
    "empty_text": (b'{"id": "e", "title": "", "tags": []}', "at least one of"),
    "wrong_type": (b'{"id": "w", "title": ["a"]}', "'title' must be a string"),
    # 20 KB of brackets: Python's parser runs out of recursion long before any size limit.
    "nested_too_deeply": (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
}


def test_malformed_messages_are_stored_with_reasons_and_function_keeps_serving(stack, publisher, predictions_bucket):
    published = {name: publish(stack, publisher, data, source="test") for name, (data, _) in MALFORMED.items()}
    for name, message_id in published.items():
        data, reason = MALFORMED[name]
        record = wait_for_rejected(predictions_bucket, message_id)
        assert record["message_id"] == message_id
        assert record["attributes"] == {"source": "test"}
        assert any(reason in error["error"] for error in record["errors"]), (name, record["errors"])
        if name == "not_utf8":
            assert record["data_encoding"] == "base64"
            assert base64.b64decode(record["data"]) == data
        else:
            assert record["data"].encode() == data
        assert not predictions_bucket.get_blob(objects.predictions(today(), message_id))

    # Still serving after all of that.
    ok = publish(stack, publisher, b'{"id": "after", "title": "wireless headphones"}')
    [line] = wait_for_prediction_lines(predictions_bucket, ok)
    assert line["id"] == "after"


def test_partially_valid_batch_predicts_valid_items_and_rejects_the_rest(stack, publisher, predictions_bucket):
    body = {
        "items": [
            {"id": "p-1", "title": "organic cotton scarf"},
            {"id": "p-2"},
            "junk",
            {"id": "p-4", "tags": ["限定", "防水"]},
        ]
    }
    message_id = publish(stack, publisher, json.dumps(body, ensure_ascii=False).encode())
    lines = wait_for_prediction_lines(predictions_bucket, message_id)
    assert [line["id"] for line in lines] == ["p-1", "p-4"]
    record = wait_for_rejected(predictions_bucket, message_id)
    assert [(e["index"], e["id"]) for e in record["errors"]] == [(1, "p-2"), (2, None)]


def test_a_backlog_days_old_is_predicted_and_its_feedback_kept(stack, storage_client, predictions_bucket):
    """After a backlog, messages arrive days after they were published: items are still predicted (under their
    publish date) and confirmed labels still become training data, never expired into rejected/."""
    from datetime import timedelta

    from saikika.core.events import PubSubMessage
    from saikika.core.settings import Settings
    from saikika.handlers.feedback import FeedbackRecorder
    from saikika.handlers.predict import Predictor

    settings = Settings.from_env(stack.env)
    published = today() - timedelta(days=3)
    item = PubSubMessage(id="backlog-1", data=b'{"id": "old", "title": "waterproof tent"}', publish_time=published)
    outcome = Predictor(settings, storage_client).handle(item)
    assert (outcome.predictions_object, outcome.rejected_object) == (objects.predictions(published, "backlog-1"), None)
    [line] = [
        json.loads(x) for x in jsonl.lines(predictions_bucket.blob(outcome.predictions_object).download_as_text())
    ]
    assert line["id"] == "old" and "waterproof" in line["scores"]

    feedback = PubSubMessage(
        id="backlog-2",
        publish_time=published,
        attributes={"source": "moderation-ui"},
        data=b'{"id": "old", "title": "waterproof tent", "labels": ["waterproof"]}',
    )
    stored = FeedbackRecorder(settings, storage_client).handle(feedback)
    assert stored == objects.feedback(published, "backlog-2")
    data = storage_client.bucket(stack.env["SAIKIKA_DATA_BUCKET"])
    row = json.loads(data.blob(stored).download_as_text())
    assert (row["labels"], row["source"]) == (["waterproof"], "moderation-ui")
    assert not predictions_bucket.get_blob(objects.rejected(published, "backlog-2", "feedback"))
