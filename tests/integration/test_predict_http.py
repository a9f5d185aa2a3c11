"""The HTTP function's contract, through the real functions-framework server."""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

pytestmark = pytest.mark.emulators


def call(stack, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        stack.env["SAIKIKA_PREDICT_URL"],
        data=body,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
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


def call_chunked(stack, chunks) -> tuple[int, dict]:
    """POST a body sent in chunks, with no Content-Length (Transfer-Encoding: chunked)."""
    url = urllib.parse.urlsplit(stack.env["SAIKIKA_PREDICT_URL"])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request(
            "POST",
            url.path or "/",
            body=iter(chunks),
            encode_chunked=True,
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_is_read_and_a_chunked_oversize_body_is_413_json(stack):
    from saikika.handlers.predict_http import HTTP_MAX_BYTES

    body = json.dumps({"instances": [{"id": "c1", "title": "waterproof tent"}]}).encode()
    status, answer = call_chunked(stack, [body[:10], body[10:]])
    assert status == 200 and answer["predictions"][0]["id"] == "c1"
    megabyte = b" " * 2**20
    status, answer = call_chunked(stack, [megabyte] * (HTTP_MAX_BYTES // 2**20 + 2))
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"


def test_more_text_than_a_request_may_hold_is_413_json(stack):
    from saikika.handlers.predict_http import HTTP_MAX_TEXT_CHARS

    per_item = HTTP_MAX_TEXT_CHARS // 1000 + 1
    instances = [{"id": str(i), "description": "x" * per_item} for i in range(1000)]
    status, answer = call(stack, "POST", json.dumps({"instances": instances}).encode())
    assert status == 413
    assert answer["error"]["code"] == "too_much_text"


def test_a_lone_surrogate_is_predicted(stack):
    # The JSON escape of a lone surrogate is valid JSON; it once closed the connection without an answer.
    status, answer = call(stack, "POST", b'{"instances": [{"id": "s1", "title": "\\ud800 tent"}]}')
    assert status == 200
    assert answer["predictions"][0]["id"] == "s1"


def test_a_previous_format_champion_survives_a_lone_surrogate(stack, storage_client):
    """With a version of the previous format (MurmurHash3 via mmh3), a lone surrogate in an instance crashed the
    serving process (mmh3 segfaults on such a str): it is now predicted like any other text."""

    online, _ = online_predictor_with_v1_champion(stack, storage_client)
    body = io.BytesIO(b'{"instances": [{"id": "s1", "title": "\\ud800 tent"}]}')
    status, answer = online.respond("POST", None, body.read)
    assert status == 200 and answer["predictions"][0]["id"] == "s1"


def test_an_unexpected_failure_is_documented_json(stack, storage_client, monkeypatch):
    """Whatever fails inside (a fault injected into the real scorer here), the caller gets the documented JSON."""
    online, served = online_predictor_with_v1_champion(stack, storage_client)

    def broken(texts):
        raise MemoryError("injected")

    monkeypatch.setattr(type(served.scorer), "__call__", broken)
    body = io.BytesIO(b'{"instances": [{"id": "s1", "title": "tent"}]}')
    status, answer = online.respond("POST", None, body.read)
    assert status == 500
    assert answer["error"]["code"] == "internal"


def online_predictor_with_v1_champion(stack, storage_client):
    from saikika.cloud import registry
    from saikika.core.settings import Settings
    from saikika.handlers.predict_http import OnlinePredictor
    from saikika.model import catalogue
    from tests import legacy_v1

    models = storage_client.create_bucket(f"models-{uuid.uuid4().hex[:12]}")
    files, _ = legacy_v1.build(list(catalogue.generate(400, seed=5)), sorted(catalogue.FEATURES))
    registry.push(models, *files)
    registry.set_champion(models, files.metadata, None, reason="test: a v1 champion")
    online = OnlinePredictor(Settings.from_env({**stack.env, "SAIKIKA_MODELS_BUCKET": models.name}), storage_client)
    return online, online.models.get()


def test_the_openapi_document_is_served_and_is_the_committed_one(stack):
    from tests.integration.helpers import REPO

    url = stack.env["SAIKIKA_PREDICT_URL"].rstrip("/") + "/openapi.json"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        served = json.loads(response.read())
    assert served == json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert served["openapi"] == "3.1.0"


def test_vertex_ais_own_client_sees_the_version(stack, model_files):
    """What a real Vertex AI client sees: aiplatform_v1 over REST against the local function."""
    from google.api_core.client_options import ClientOptions
    from google.api_core.exceptions import BadRequest
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    client = aiplatform_v1.PredictionServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=stack.env["SAIKIKA_PREDICT_URL"].rstrip("/")),
    )
    endpoint = "projects/p/locations/l/endpoints/e"
    response = client.predict(endpoint=endpoint, instances=[{"id": "v1", "title": "防水 スニーカー"}])
    assert response.model_version_id == model_files[1]["version"]
    assert response.deployed_model_id == "local"
    assert response.model.endswith(f"/models/{model_files[1]['version']}/")
    assert response.predictions[0]["id"] == "v1" and "waterproof" in response.predictions[0]["labels"]
    with pytest.raises(BadRequest):
        client.predict(endpoint=endpoint, instances=[{"id": "no text"}])


def test_an_explanation_over_http_rebuilds_each_labels_score(stack):
    import math

    instances = [{"id": "x1", "title": "防水 スニーカー", "description": "軽量 防水"}, {"id": "x2", "title": "lamp"}]
    body = {"instances": instances, "parameters": {"explain": 3}}
    status, answer = call(stack, "POST", json.dumps(body, ensure_ascii=False).encode())
    assert status == 200
    first = answer["predictions"][0]
    assert [e["label"] for e in first["explanations"]] == first["labels"] and first["labels"]
    for prediction in answer["predictions"]:
        for e in prediction["explanations"]:
            assert len(e["ngrams"]) == 3
            decision = e["intercept"] + sum(t["contribution"] for t in e["ngrams"]) + e["ngrams_rest"]
            decision += sum(t["contribution"] for t in e.get("words", []))
            # The scores are rounded to 6 places in the response; the explanation's own score is not.
            assert abs(1 / (1 + math.exp(-decision)) - e["score"]) < 1e-9
            assert abs(e["score"] - prediction["scores"][e["label"]]) <= 5e-7
    assert "explanations" not in call(stack, "POST", json.dumps({"instances": instances}).encode())[1]["predictions"][0]


@pytest.mark.parametrize("parameters", [{"explain": -1}, {"explain": 51}, {"explain": "3"}, "explain", [3]])
def test_bad_parameters_are_400(stack, parameters):
    body = {"instances": [{"id": "p1", "title": "tent"}], "parameters": parameters}
    status, answer = call(stack, "POST", json.dumps(body).encode())
    assert status == 400 and answer["error"]["code"] == "invalid_parameters"


def raw_post(stack, payload: bytes) -> tuple[int, dict]:
    """Send bytes as they are (framing included) after a chunked POST's headers; read the answer."""
    import socket

    url = urllib.parse.urlsplit(stack.env["SAIKIKA_PREDICT_URL"])
    with socket.create_connection((url.hostname, url.port), timeout=60) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            connection.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, json.loads(response.read())


def test_a_chunked_body_whose_framing_breaks_is_a_4xx_json(stack):
    """12 MiB in 1 MiB chunks whose framing breaks after the 12th: answered 413 (too large) or 400 (the framing),
    never a 5xx; and a short body with broken framing is a 400."""
    megabyte = b" " * 2**20
    chunk = f"{len(megabyte):x}\r\n".encode() + megabyte + b"\r\n"
    status, answer = raw_post(stack, chunk * 12 + b"zz-not-a-chunk-size\r\n\r\n")
    assert status in (400, 413) and answer["error"]["code"] in ("payload_too_large", "unreadable_body")
    status, answer = raw_post(stack, b'5\r\n{"ins\r\nzz\r\n\r\n')
    assert status == 400 and answer["error"]["code"] in ("unreadable_body", "invalid_json")
    assert call(stack)[0] == 200  # and the server is still serving
