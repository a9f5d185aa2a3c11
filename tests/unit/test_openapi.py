"""predict_http's OpenAPI document: the committed rendering is what the code generates, and every limit it states
is the limit the code enforces (one past each is refused, each itself accepted)."""

from __future__ import annotations

import json
import re
import sys

import jsonschema_rs
import pytest

from saikika.core import items
from saikika.handlers import predict_http
from saikika.handlers.predict_http import OPENAPI_DOCUMENT, PredictRequest, parse_request
from saikika.handlers.predict_http_openapi import ERROR_CODES
from tests.conftest import REPO

SCHEMAS = OPENAPI_DOCUMENT["components"]["schemas"]
ITEM = SCHEMAS["Item"]["properties"]
INSTANCES = SCHEMAS["PredictRequest"]["properties"]["instances"]
EXPLAIN = SCHEMAS["PredictRequest"]["properties"]["parameters"]["properties"]["explain"]
POST = OPENAPI_DOCUMENT["paths"]["/"]["post"]


def test_docs_openapi_json_is_what_the_code_generates():
    committed = (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == predict_http.openapi_json(), "regenerate docs/openapi.json (see predict_http.openapi_json)"
    assert json.loads(committed)["openapi"].startswith("3.1")


def request(instances, parameters=None) -> bytes:
    body = {"instances": instances}
    if parameters is not None:
        body["parameters"] = parameters
    return json.dumps(body).encode()


def accepted(body: bytes) -> bool:
    return isinstance(parse_request(body), PredictRequest)


def refused_with(body: bytes) -> str:
    outcome = parse_request(body)
    assert not isinstance(outcome, PredictRequest), "expected an error response"
    return outcome[1]["error"]["code"]


@pytest.mark.parametrize(
    "field, make",
    [
        ("title", lambda n: {"id": "i", "title": "t" * n}),
        ("description", lambda n: {"id": "i", "description": "d" * n}),
        ("id", lambda n: {"id": "i" * n, "title": "t"}),
    ],
)
def test_each_text_limit_in_the_document_is_the_enforced_one(field, make):
    limit = ITEM[field]["maxLength"]
    assert accepted(request([make(limit)]))
    assert refused_with(request([make(limit + 1)])) == "invalid_items"


def test_tag_limits_in_the_document_are_the_enforced_ones():
    count, chars = ITEM["tags"]["maxItems"], ITEM["tags"]["items"]["maxLength"]
    assert accepted(request([{"id": "i", "tags": ["t" * chars] * count}]))
    assert refused_with(request([{"id": "i", "tags": ["t"] * (count + 1)}])) == "invalid_items"
    assert refused_with(request([{"id": "i", "tags": ["t" * (chars + 1)]}])) == "invalid_items"


def test_the_instance_count_limits_are_the_enforced_ones():
    assert INSTANCES["minItems"] == 1
    assert accepted(request([{"id": str(i), "title": "t"} for i in range(INSTANCES["maxItems"])]))
    assert refused_with(request([{"id": str(i), "title": "t"} for i in range(INSTANCES["maxItems"] + 1)])) == (
        "invalid_request"
    )
    assert refused_with(request([])) == "invalid_request"


def test_the_body_and_text_limits_are_the_enforced_ones():
    assert refused_with(b" " * (POST["x-max-body-bytes"] + 1)) == "payload_too_large"
    chars = POST["x-max-text-chars"]
    per_item = chars // 100
    fits = [{"id": str(i), "description": "x" * per_item} for i in range(100)]
    assert accepted(request(fits))
    assert refused_with(request([*fits, {"id": "one more", "title": "x"}])) == "too_much_text"


def test_the_explain_bounds_are_the_enforced_ones():
    item = [{"id": "i", "title": "t"}]
    assert (EXPLAIN["minimum"], EXPLAIN["type"]) == (0, "integer")
    for k in (0, EXPLAIN["maximum"], float(EXPLAIN["maximum"])):
        assert parse_request(request(item, {"explain": k})).explain == int(k)
    for bad in (-1, EXPLAIN["maximum"] + 1, True, "5", 2.5, None):
        assert refused_with(request(item, {"explain": bad})) == "invalid_parameters"
    assert refused_with(request(item, [])) == "invalid_parameters"


def test_every_error_the_handler_can_answer_is_documented_with_its_status():
    source = (REPO / "shared" / "saikika" / "handlers" / "predict_http.py").read_text()
    used = {(int(status), code) for status, code in re.findall(r'_error\(\s*(\d{3}),\s*"([a-z_]+)"', source)}
    assert len(used) >= 10
    assert used <= set((status, code) for code, status in ERROR_CODES.items())
    documented = set(SCHEMAS["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    assert {code for _, code in used} <= documented
    post_statuses = {int(s) for s in POST["responses"]}
    assert {status for status, _ in used} - {405} <= post_statuses


def test_the_documented_non_blank_pattern_is_pythons_blank_on_every_code_point():
    non_blank = re.compile(items.NON_BLANK_PATTERN)
    disagree = [hex(c) for c in range(sys.maxunicode + 1) if bool(non_blank.fullmatch(chr(c))) == chr(c).isspace()]
    assert disagree == []


# Every character some engine's `\s` counts as space (Python's, ECMA's, Unicode's White_Space), and neighbours.
_SPACE_SUSPECTS = [chr(c) for c in [*range(0x21), 0x7F, 0x85, 0xA0, 0x180E, 0x1680, *range(0x2000, 0x2030)]] + [
    "\u205f",
    "\u3000",
    "\ufeff",
    "a",
]


@pytest.mark.parametrize("field", ["title", "description", "tags"])
def test_a_validator_as_schemathesis_uses_and_the_function_agree_on_what_is_blank(field):
    # jsonschema_rs is the validator schemathesis judges "schema-valid" with (ST202); a title of "\u001e" once
    # passed it and was refused by the function.
    validator = jsonschema_rs.validator_for(SCHEMAS["Item"])
    for char in _SPACE_SUSPECTS:
        item = {"id": "i", field: [char] if field == "tags" else char}
        assert validator.is_valid(item) == accepted(request([item])), f"{field} = {char!r}"
