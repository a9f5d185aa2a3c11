"""Every resource in terraform/*.tf against the google provider's own schema (tests/provider_schema.py): no unknown
argument or nested block, no missing required one, nested blocks checked recursively. `terraform validate` needs
the provider, which cannot be downloaded here; this catches what it would."""

from __future__ import annotations

import copy

import pytest

from tests import provider_schema, terraform_hcl


@pytest.fixture(scope="module")
def schema() -> dict:
    return provider_schema.load()


@pytest.fixture(scope="module")
def hcl() -> dict:
    return terraform_hcl.load()


def test_every_resource_is_what_the_provider_accepts(hcl, schema):
    checked = {t for block in hcl["resource"] for t in block} | {t for block in hcl.get("data", []) for t in block}
    assert {"google_monitoring_alert_policy", "google_cloudfunctions2_function", "google_bigquery_table"} <= checked
    assert provider_schema.check(hcl, schema) == []


def test_the_schema_is_the_providers(schema):
    """A few facts of google 7.x, so a manifest read wrongly (no blocks, nothing required) cannot pass the check."""
    policy = schema["resource"]["google_monitoring_alert_policy"]
    assert policy["arguments"]["display_name"] and policy["arguments"]["combiner"]
    assert policy["blocks"]["conditions"]["required"]
    threshold = policy["blocks"]["conditions"]["blocks"]["condition_threshold"]
    assert threshold["arguments"]["comparison"] and "aggregations" in threshold["blocks"]
    assert schema["resource"]["google_storage_bucket"]["arguments"]["name"] is True
    assert "google_project" in schema["data"]
    assert len(schema["resource"]) > 1000


def _with(hcl: dict, google_type: str, name: str, change) -> dict:
    """A copy of the HCL with one resource changed by `change(body)`."""
    changed = copy.deepcopy(hcl)
    for block in changed["resource"]:
        if name in block.get(google_type, {}):
            change(block[google_type][name])
            return changed
    raise KeyError((google_type, name))


def _nested(body: dict, *path: str) -> dict:
    for key in path:
        body = terraform_hcl.unwrap(body[key])
    return body


@pytest.mark.parametrize(
    "google_type, name, change, expected",
    [
        (
            "google_storage_bucket",
            "data",
            lambda body: body.update(uniform_bucket_level_acess=True),
            "google_storage_bucket.data: unknown argument or block 'uniform_bucket_level_acess'",
        ),
        (
            "google_storage_bucket",
            "data",
            lambda body: body.pop("name"),
            "google_storage_bucket.data: missing required 'name'",
        ),
        (
            "google_monitoring_alert_policy",
            "dead_letters",
            lambda body: _nested(body, "conditions", "condition_threshold", "aggregations").update(aligner="MAX"),
            "google_monitoring_alert_policy.dead_letters.conditions.condition_threshold.aggregations: unknown "
            "argument or block 'aligner'",
        ),
        (
            "google_monitoring_alert_policy",
            "dead_letters",
            lambda body: _nested(body, "conditions", "condition_threshold").pop("comparison"),
            "google_monitoring_alert_policy.dead_letters.conditions.condition_threshold: missing required 'comparison'",
        ),
        (
            "google_logging_metric",
            "loop",
            lambda body: body["dynamic"][0]["bucket_options"]["content"][0].update(linear=[{"width": 1}]),
            "google_logging_metric.loop.bucket_options: unknown argument or block 'linear'",
        ),
        (
            "google_monitoring_alert_policy",
            "log_match",
            lambda body: body.pop("conditions"),
            "google_monitoring_alert_policy.log_match: missing required 'conditions'",
        ),
    ],
)
def test_the_check_bites(hcl, schema, google_type, name, change, expected):
    assert expected in provider_schema.check(_with(hcl, google_type, name, change), schema)


def test_an_unknown_resource_type_is_named(hcl, schema):
    changed = copy.deepcopy(hcl)
    changed["resource"].append({"google_monitoring_alert_polcy": {"x": {"display_name": "x"}}})
    assert provider_schema.check(changed, schema) == [
        "google_monitoring_alert_polcy.x: no such resource in the google provider"
    ]
