"""Each alert policy's and log-based metric's filter, as terraform deploys it, matches the log lines the code
writes (tests/fixtures/logs/NAME.jsonl, one file per alert or metric) and not their near misses; and the
evaluator itself behaves as the Logging query language's documentation says."""

from __future__ import annotations

import copy
import re

import pytest

from saikika.core.retraining import RunStatus
from tests import alert_filters
from tests.alert_filters import log_entry, matches

ALERTS = ("errors", "loop_stalled", "live_quality_degraded", "label_drift")
METRICS = ("live_micro_f1", "label_drift_divergence", "retrain_runs", "errors")
# Content alerts: one never matches the lines of another.
CONTENT_ALERTS = ("loop_stalled", "live_quality_degraded", "label_drift")
# Who else might log: another Cloud Run service or job in the project, a VM.
FOREIGN = [
    ("cloud_run_revision", {"service_name": "other-service"}),
    ("cloud_run_revision", {"service_name": "xsaikika-retrain"}),
    ("cloud_run_job", {"job_name": "other-training"}),
    ("gce_instance", {"instance_id": "1"}),
]


@pytest.fixture(scope="module")
def terraform() -> alert_filters.Terraform:
    return alert_filters.Terraform()


@pytest.fixture(scope="module")
def alerts(terraform) -> dict[str, str]:
    return terraform.alert_filters()


@pytest.fixture(scope="module")
def metrics(terraform) -> dict[str, str]:
    return terraform.metric_filters()


def test_every_alert_and_metric_has_its_filter_and_its_fixture(alerts, metrics):
    assert sorted(alerts) == sorted(ALERTS)
    assert sorted(metrics) == sorted(METRICS)
    for name in {*ALERTS, *METRICS}:
        lines = alert_filters.fixture_lines(name)
        assert lines, f"tests/fixtures/logs/{name}.jsonl holds no line"
        assert all("severity" in line and "message" in line for line in lines), name
    for text in [*alerts.values(), *metrics.values()]:
        alert_filters.parse(text)  # inside the implemented subset; `${` left over would not parse
        assert "${" not in text


@pytest.mark.parametrize("name", ALERTS)
def test_each_alert_matches_its_lines_from_every_saikika_writer_and_from_no_one_else(terraform, alerts, name):
    for line in alert_filters.fixture_lines(name):
        for kind, labels in terraform.function_resources().values():
            assert matches(alerts[name], log_entry(line, kind, labels)), (name, kind, labels, line["message"])
        for kind, labels in FOREIGN:
            assert not matches(alerts[name], log_entry(line, kind, labels)), (name, kind, labels)


@pytest.mark.parametrize("name", METRICS)
def test_each_metric_counts_its_lines_and_extracts_its_value_and_labels(terraform, metrics, name):
    extractors = terraform.metric_extractors()[name]
    kind, labels = terraform.function_resources()["retrain"]
    for line in alert_filters.fixture_lines(name):
        entry = log_entry(line, kind, labels)
        assert matches(metrics[name], entry), (name, line["message"])
        if extractors["value"]:
            value = alert_filters.extract(extractors["value"], entry)
            assert isinstance(value, float) and 0 <= value <= 1, (name, value)
        for label, extractor in extractors["labels"].items():
            assert alert_filters.extract(extractor, entry) not in (None, ""), (name, label)
        for foreign_kind, foreign in FOREIGN:
            assert not matches(metrics[name], log_entry(line, foreign_kind, foreign))


def _near_misses(name: str, line: dict) -> list[dict]:
    """The same line with the one thing changed that must keep it from matching `name` (None: the field removed, as
    a rename in the code would)."""
    changed = {
        "loop_stalled": [{"status": status} for status in ("ok", "degraded", "no-champion", None)]
        + [{"message": "loop health checked"}, {"message": "live quality"}],
        "live_quality_degraded": [{"degraded": False}, {"degraded": None}, {"message": "label drift"}],
        "label_drift": [{"above_bound": False}, {"above_bound": None}, {"message": "live quality"}],
        "errors": [{"severity": severity} for severity in ("WARNING", "INFO", "NOTICE", "DEBUG", "DEFAULT")],
        "live_micro_f1": [{"message": "live quality skipped"}, {"message": "label drift"}],
        "label_drift_divergence": [{"message": "live quality"}, {"message": "label drift not computed"}],
        "retrain_runs": [{"status": None}, {"message": "retraining " + line["message"]}, {"message": "retrain"}],
    }[name]
    misses = []
    for change in changed:
        miss = copy.deepcopy(line)
        for key, value in change.items():
            if value is None:
                miss.pop(key, None)
            else:
                miss[key] = value
        misses.append(miss)
    return misses


@pytest.mark.parametrize("name", sorted({*ALERTS, *METRICS}))
def test_near_misses_do_not_match(terraform, alerts, metrics, name):
    kind, labels = terraform.function_resources()["retrain"]
    text = alerts.get(name) or metrics[name]
    for line in alert_filters.fixture_lines(name):
        for miss in _near_misses(name, line):
            assert not matches(text, log_entry(miss, kind, labels)), (name, miss)


def test_a_content_alert_never_matches_another_alerts_lines(terraform, alerts):
    kind, labels = terraform.function_resources()["retrain"]
    for name in CONTENT_ALERTS:
        for other in {*CONTENT_ALERTS, "live_micro_f1", "label_drift_divergence", "retrain_runs"} - {name}:
            for line in alert_filters.fixture_lines(other):
                assert not matches(alerts[name], log_entry(line, kind, labels)), (name, other)


def test_each_metric_also_counts_the_lines_of_its_alert(terraform, metrics):
    kind, labels = terraform.function_resources()["retrain"]
    for metric, alert in [("live_micro_f1", "live_quality_degraded"), ("label_drift_divergence", "label_drift")]:
        for line in alert_filters.fixture_lines(alert):
            assert matches(metrics[metric], log_entry(line, kind, labels)), (metric, alert)


def test_the_fixtures_hold_the_contracts_values():
    """The run outcomes are RunStatus values and the severities the contract's (a fixture that drifted from the code
    would test nothing)."""
    assert {line["status"] for line in alert_filters.fixture_lines("retrain_runs")} <= {s.value for s in RunStatus}
    assert {line["severity"] for line in alert_filters.fixture_lines("loop_stalled")} == {"ERROR"}
    assert {line["severity"] for line in alert_filters.fixture_lines("live_quality_degraded")} == {"WARNING"}
    assert {line["severity"] for line in alert_filters.fixture_lines("label_drift")} == {"WARNING"}


def test_the_dead_letter_alert_watches_exactly_the_dead_letter_subscriptions(terraform):
    """The metric-threshold filter (Cloud Monitoring's language, RE2 full match) against the subscription names
    terraform creates with the defaults."""
    from tests import terraform_hcl

    [policy] = [
        body
        for body in terraform_hcl.resources(terraform.hcl, "google_monitoring_alert_policy").values()
        if "condition_threshold" in body["conditions"][0]
    ]
    condition = terraform_hcl.unwrap(policy["conditions"][0]["condition_threshold"])
    text = terraform.resolve(condition["filter"])
    assert 'metric.type = "pubsub.googleapis.com/subscription/num_undelivered_messages"' in text
    pattern = re.search(r'subscription_id = monitoring\.regex\.full_match\("([^"]+)"\)', text).group(1)
    prefix = terraform.variables["name_prefix"]
    keys = terraform_hcl.unwrap(terraform.locals["subscriptions"])
    dead = [f"{prefix}-{key}-dead-letter-keep" for key in keys]
    pushed = [f"{prefix}-{key}" for key in keys]
    assert len(dead) == 6
    assert all(re.fullmatch(pattern, name) for name in dead)
    assert not any(re.fullmatch(pattern, name) for name in pushed)
    assert unwrap_threshold(condition) == ("COMPARISON_GT", 0)


def unwrap_threshold(condition: dict) -> tuple[str, float]:
    return condition["comparison"], condition["threshold_value"]


def test_log_match_alerts_carry_the_rate_limit_log_match_requires(terraform):
    from tests import terraform_hcl

    policy = terraform_hcl.resources(terraform.hcl, "google_monitoring_alert_policy")["log_match"]
    strategy = terraform_hcl.unwrap(policy["alert_strategy"])
    assert terraform.resolve(terraform_hcl.unwrap(strategy["notification_rate_limit"])["period"]).endswith("s")
    assert "google_monitoring_notification_channel.email" in policy["notification_channels"]


# ---- the evaluator against the documentation's examples --------------------------------------------------------
def _gce(severity: str, text: str) -> dict:
    return {"resource": {"type": "gce_instance", "labels": {}}, "severity": severity, "textPayload": text}


def test_the_documented_example_query():
    query = 'resource.type = "gce_instance" AND\nseverity >= "ERROR" AND\nNOT textPayload:robot'
    assert matches(query, _gce("ERROR", "disk full"))
    assert matches(query, _gce("CRITICAL", "disk full"))
    assert not matches(query, _gce("WARNING", "disk full"))
    assert not matches(query, _gce("ERROR", "the Robot broke"))  # has is not case-sensitive
    assert not matches(query, {**_gce("ERROR", "x"), "resource": {"type": "gae_app", "labels": {}}})


def test_or_binds_tighter_than_and():
    """The docs: `"a" OR NOT "b" AND NOT "c" OR "d"` is `("a" OR (NOT "b")) AND ((NOT "c") OR "d")`."""
    query = 'x="a" OR NOT x="b" AND NOT y="c" OR y="d"'
    grouped = '(x="a" OR (NOT x="b")) AND ((NOT y="c") OR y="d")'
    sql_like = 'x="a" OR (NOT x="b" AND NOT y="c") OR y="d"'
    differs = False
    for x in ("a", "b", "z"):
        for y in ("c", "d", "z"):
            entry = {"x": x, "y": y}
            assert matches(query, entry) == matches(grouped, entry), (x, y)
            differs |= matches(query, entry) != matches(sql_like, entry)
    assert differs  # the test tells the two precedences apart
    assert matches('x="a" y="d"', {"x": "a", "y": "d"}) and not matches('x="a" y="d"', {"x": "a", "y": "c"})
    assert matches('-x="b"', {"x": "a"}) and not matches('-x="b"', {"x": "b"})


def test_severity_compares_by_its_order_quoted_or_not():
    for severity, at_least_error in [
        ("DEFAULT", False),
        ("DEBUG", False),
        ("INFO", False),
        ("NOTICE", False),
        ("WARNING", False),
        ("ERROR", True),
        ("CRITICAL", True),
        ("ALERT", True),
        ("EMERGENCY", True),
    ]:
        assert matches("severity>=ERROR", {"severity": severity}) is at_least_error
        assert matches('severity >= "ERROR"', {"severity": severity}) is at_least_error
        assert matches("severity<WARNING", {"severity": severity}) is (
            severity in ("DEFAULT", "DEBUG", "INFO", "NOTICE")
        )
    with pytest.raises(alert_filters.ParseError):
        matches("severity>=SEVERE", {"severity": "ERROR"})


def test_a_stdout_line_becomes_the_entry_cloud_logging_makes():
    entry = log_entry('{"severity": "WARNING", "message": "m", "time": "t", "n": 1}', "cloud_run_revision", {"s": "x"})
    assert entry["severity"] == "WARNING" and entry["timestamp"] == "t"
    assert entry["jsonPayload"] == {"message": "m", "n": 1}  # message stays in the payload; severity and time leave
    assert matches('jsonPayload.message="m" AND severity=WARNING AND resource.labels.s="x"', entry)
    assert not matches("jsonPayload.severity:*", entry)
    assert log_entry('{"message": "no severity"}', "x", {})["severity"] == "DEFAULT"


def test_booleans_numbers_presence_and_missing_fields():
    payload = {"jsonPayload": {"degraded": True, "above_bound": False, "micro_f1": 0.41, "rows": 120, "why": None}}
    assert matches("jsonPayload.degraded=true", payload)
    assert not matches("jsonPayload.degraded=false", payload)
    assert not matches("jsonPayload.above_bound=true", payload)
    assert matches("jsonPayload.above_bound=false", payload)
    assert not matches('jsonPayload.degraded="yes"', payload)
    assert matches("jsonPayload.micro_f1<0.5 AND jsonPayload.rows>=120", payload)
    assert not matches("jsonPayload.rows>120", payload)
    assert matches("jsonPayload.rows:*", payload) and not matches("jsonPayload.missing:*", payload)
    # A comparison on a field that is not there is false, and its negation true.
    assert not matches("jsonPayload.missing=true", payload)
    assert matches("NOT jsonPayload.missing=true", payload)
    assert matches("jsonPayload.missing!=true", payload)
    assert matches('jsonPayload.degraded!=false AND jsonPayload."micro_f1">=0.4', payload)


def test_regular_expressions_search_and_are_case_sensitive():
    entry = {"jsonPayload": {"message": "retrain trained"}}
    assert matches('jsonPayload.message=~"^retrain "', entry)
    assert matches('jsonPayload.message=~"train"', entry)  # a match anywhere, not the whole value
    assert not matches('jsonPayload.message=~"^Retrain"', entry)
    assert matches('jsonPayload.message=~"(?i)^Retrain"', entry)
    assert matches('jsonPayload.message!~"^live"', entry) and not matches('jsonPayload.message!~"^retrain"', entry)
    assert matches('jsonPayload.message:"TRAINED"', entry)  # has: substring, not case-sensitive


@pytest.mark.parametrize(
    "text", ['"the cat in the hat"', "x=", "(x=1", "x=1 AND", "x=1)", 'x="a" OR', "timestamp>=-P1D(", "x==1"]
)
def test_what_is_not_implemented_or_not_a_filter_is_refused(text):
    with pytest.raises(alert_filters.ParseError):
        alert_filters.parse(text)


def test_the_dashboard_charts_every_metric_and_the_dead_letter_backlog(terraform):
    charts = alert_filters.one(terraform.locals["dashboard_charts"])
    filters = [chart["filter"] for chart in charts]
    for metric in METRICS:
        assert any(f'google_logging_metric.loop["{metric}"].name' in text for text in filters), metric
    assert "${local.dead_letter_backlog}" in filters
    from tests import terraform_hcl

    dashboard = terraform_hcl.resources(terraform.hcl, "google_monitoring_dashboard")["loop"]
    assert "local.dashboard_charts" in dashboard["dashboard_json"]
