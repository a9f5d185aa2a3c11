"""The HTTP function's contract, through the real functions-framework server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.emulators


def call(stack, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(stack.env["SAIKIKA_PREDICT_URL"], data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_health_names_the_serving_version(stack, model_files):
    status, body = call(stack)
    assert status == 200
    assert body["ready"] is True and body["model_version"] == model_files[1]["version"]


def test_predicts_instances(stack, model_files):
    instances = [{"id": "h1", "title": "防水 スニーカー"}, {"id": "h2", "description": "hand-crafted retro lamp"}]
    status, body = call(stack, "POST", json.dumps({"instances": instances}, ensure_ascii=False).encode())
    assert status == 200
    assert body["model_version"] == model_files[1]["version"]
    assert [p["id"] for p in body["predictions"]] == ["h1", "h2"]
    assert "waterproof" in body["predictions"][0]["labels"]
    assert {"handmade", "vintage"} <= set(body["predictions"][1]["labels"])
    assert all(set(p) == {"id", "labels", "scores"} for p in body["predictions"])


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "invalid_json"),
        (b'{"items": [{"id": "a", "title": "t"}]}', "invalid_request"),
        (b'{"instances": []}', "invalid_request"),
        (json.dumps({"instances": [{"id": str(i), "title": "t"} for i in range(1001)]}).encode(), "invalid_request"),
    ],
)
def test_malformed_requests_are_400(stack, body, code):
    status, answer = call(stack, "POST", body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]


def test_invalid_instances_are_400_with_details(stack):
    body = {"instances": [{"id": "ok", "title": "t"}, {"id": "bad"}, {"title": "no id"}]}
    status, answer = call(stack, "POST", json.dumps(body).encode())
    assert status == 400
    assert answer["error"]["code"] == "invalid_items"
    assert [(d["index"], d["id"]) for d in answer["error"]["details"]] == [(1, "bad"), (2, None)]


def test_oversize_body_is_413(stack):
    from saikika.handlers.predict_http import HTTP_MAX_BYTES

    status, answer = call(stack, "POST", b" " * (HTTP_MAX_BYTES + 1))
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"


def test_other_methods_are_405(stack):
    status, _ = call(stack, "PUT", b"{}")
    assert status == 405
