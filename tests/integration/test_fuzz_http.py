"""predict_http under hostile requests (hypothesis), through the real functions-framework server: no 5xx for bad
input, every error the documented JSON shape with a documented code, every accepted request fully answered."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import ITEMISH, JSON_VALUES

pytestmark = pytest.mark.emulators

DOCUMENTED = {
    "invalid_json",
    "invalid_request",
    "invalid_items",
    "payload_too_large",
    "too_much_text",
    "no_model",
    "method_not_allowed",
}
BODIES = st.one_of(
    st.binary(max_size=3000),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(ITEMISH, max_size=8).map(lambda xs: json.dumps({"instances": xs}).encode()),
    st.lists(ITEMISH, max_size=8).map(
        lambda xs: json.dumps({"instances": xs}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ),
    st.integers(1, 20_000).map(lambda depth: b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"),
)


def post(url: str, body: bytes, method: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, method=st.sampled_from(["POST", "POST", "POST", "PUT", "PATCH", "DELETE"]))
def test_no_request_gets_a_5xx_or_an_undocumented_answer(stack, body, method):
    status, raw, content_type = post(stack.env["SAIKIKA_PREDICT_URL"], body, method)
    assert status < 500, (status, raw[:300])
    assert content_type.startswith("application/json")
    answer = json.loads(raw)
    if status == 200:
        instances = json.loads(body)["instances"]
        assert [p["id"] for p in answer["predictions"]] == [i["id"] for i in instances]
    else:
        assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "details"}
        assert answer["error"]["code"] in DOCUMENTED and answer["error"]["message"]
