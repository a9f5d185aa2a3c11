"""Offline checks of terraform/: formatting, checkov, and agreement between the HCL and the code."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

from saikika.core.settings import OPTIONAL_ENV, REQUIRED_ENV
from tests import terraform_hcl
from tests.terraform_hcl import TERRAFORM, local, resources, unwrap

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def decorated_functions(main_py: Path) -> list[tuple[str, str]]:
    """(function name, kind) for each @functions_framework.cloud_event / .http in main.py."""
    found = []
    for node in ast.parse(main_py.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and decorator.attr in ("cloud_event", "http"):
                    found.append((node.name, "cloudevent" if decorator.attr == "cloud_event" else "http"))
    return found


def test_terraform_fmt():
    terraform = shutil.which("terraform")
    assert terraform, "terraform is not on PATH"
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff"], cwd=TERRAFORM, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_checkov_reports_no_failed_check():
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make test` installs checkov in its own venv"
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--quiet",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 10


def test_every_checkov_skip_carries_a_reason():
    skips = [
        line for path in TERRAFORM.glob("*.tf") for line in path.read_text().splitlines() if "checkov:skip" in line
    ]
    assert skips
    for line in skips:
        assert re.search(r"checkov:skip=CKV2?_\w+:\S.{10,}", line), line


def test_every_function_folder_has_exactly_one_matching_function_resource(hcl):
    functions = unwrap(local(hcl, "functions"))
    resource = resources(hcl, "google_cloudfunctions2_function")
    assert list(resource) == ["fn"] and unwrap(resource["fn"]["for_each"]) == "${local.functions}"
    folders = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "main.py").exists())
    assert sorted(functions) == folders
    subscriptions = unwrap(local(hcl, "subscriptions"))
    for folder in folders:
        [(entry_point, kind)] = decorated_functions(REPO / "functions" / folder / "main.py")
        assert functions[folder]["entry_point"] == entry_point
        assert functions[folder]["kind"] == kind
        pushed_to = [s for s in subscriptions.values() if s["function"] == folder]
        if kind == "cloudevent":
            assert pushed_to, f"{folder} is event-driven but no subscription delivers to it"
        else:
            assert not pushed_to, f"{folder} is an HTTP function but a subscription pushes to it"


def test_functions_get_every_setting_the_code_requires(hcl):
    [fn] = resources(hcl, "google_cloudfunctions2_function").values()
    service = unwrap(fn["service_config"])
    assert unwrap(service["environment_variables"]).startswith("${merge(local.settings_env")
    settings_env = unwrap(local(hcl, "settings_env"))
    for name in REQUIRED_ENV:
        assert re.search(rf"\b{name}\b", settings_env), name
    variables = {name: body for block in hcl["variable"] for name, body in block.items()}
    defaults = unwrap(variables["settings"]["default"])
    assert set(defaults) <= set(OPTIONAL_ENV)


def _members(node) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("member", "members")]
        return [str(m) for m in found] + [m for v in node.values() for m in _members(v)]
    if isinstance(node, list):
        return [m for v in node for m in _members(v)]
    return []


def test_nothing_is_public(hcl):
    members = _members(hcl.get("resource", []))
    assert members
    assert not [m for m in members if "allUsers" in m or "allAuthenticatedUsers" in m]
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    assert "allUsers" not in example and "allAuthenticatedUsers" not in example
    variables = {name: body for block in hcl["variable"] for name, body in block.items()}
    assert "allUsers" in json.dumps(variables["http_invokers"]["validation"])  # refused by validation


def test_every_push_subscription_has_a_dead_letter_policy(hcl):
    subscriptions = resources(hcl, "google_pubsub_subscription")
    pushed = {name: body for name, body in subscriptions.items() if "push_config" in body}
    assert pushed
    for name, body in pushed.items():
        policy = unwrap(body["dead_letter_policy"])
        assert unwrap(policy["dead_letter_topic"]) and unwrap(policy["max_delivery_attempts"]), name
        assert "oidc_token" in unwrap(body["push_config"]), f"{name} must push with an OIDC token"


def test_the_deployed_runtime_is_the_one_the_locks_were_resolved_for(hcl):
    """Locks resolved by one Python and deployed on another install wheels nobody tested (or none at all)."""
    runtime = next(block["python_runtime"] for block in hcl["variable"] if "python_runtime" in block)
    locked = {
        re.search(r"^# runtime: (\S+)$", path.read_text(), re.M).group(1)
        for path in (REPO / "functions").glob("*/requirements.txt")
    }
    assert locked == {runtime["default"]}


@pytest.fixture(scope="module")
def hcl() -> dict:
    return terraform_hcl.load()


def test_builds_audit_logs_and_old_versions_are_configured(hcl):
    """Builds run as their own account; the data-access logs the checkov skips rely on are on; versioned
    buckets keep old versions for a bounded time (the lease and retrain state are overwritten on every run)."""
    function = resources(hcl, "google_cloudfunctions2_function")["fn"]
    assert unwrap(function["build_config"])["service_account"] == "${google_service_account.builder.id}"
    audit = resources(hcl, "google_project_iam_audit_config")["storage"]
    assert unwrap(audit["service"]) == "storage.googleapis.com"
    assert {unwrap(c["log_type"]) for c in audit["audit_log_config"]} == {"DATA_READ", "DATA_WRITE"}
    for name, bucket in resources(hcl, "google_storage_bucket").items():
        if name in ("data", "models"):
            conditions = [unwrap(unwrap(rule)["condition"]) for rule in bucket["lifecycle_rule"]]
            assert any("days_since_noncurrent_time" in c for c in conditions), name


def test_only_the_listed_members_may_publish_feedback(hcl):
    binding = resources(hcl, "google_pubsub_topic_iam_member")["feedback_publishers"]
    assert unwrap(binding["for_each"]) == "${toset(var.feedback_publishers)}"
    assert unwrap(binding["topic"]) == "${google_pubsub_topic.feedback.id}"
    assert unwrap(binding["role"]) == "roles/pubsub.publisher"
    # Nothing grants publishing project-wide (which would reach the feedback topic too).
    assert all(
        unwrap(b["role"]) != "roles/pubsub.publisher" for b in resources(hcl, "google_project_iam_member").values()
    )


# ---- BigQuery: the tables read what the code writes -------------------------------------------------
def _table_layouts(hcl) -> dict[str, dict]:
    """table id → its external data configuration, the prefix/layout locals resolved."""
    tables = unwrap(local(hcl, "prediction_tables"))
    bucket = "${google_storage_bucket.predictions.name}"
    resolved = {}
    for key, table in tables.items():
        config = unwrap(resources(hcl, "google_bigquery_table")["predictions"]["external_data_configuration"])
        uri = unwrap(config["source_uris"]).replace("${each.value.prefix}", table["prefix"])
        hive = unwrap(config["hive_partitioning_options"])
        prefix = (
            hive["source_uri_prefix"]
            .replace("${each.value.prefix}", table["prefix"])
            .replace("${each.value.layout}", table["layout"])
        )
        resolved[key] = {"uri": uri, "prefix": prefix, "hive": hive, "config": config, "table": table}
        assert uri.startswith(f"gs://{bucket}/") and prefix.startswith(f"gs://{bucket}/")
    return resolved


def _matches(uri: str, name: str) -> bool:
    """BigQuery's one `*` matches any characters, `/` included."""
    path = uri.split("/", 3)[3]
    return re.fullmatch(re.escape(path).replace(r"\*", ".*"), name) is not None


def _layout_regex(prefix_with_layout: str) -> str:
    path = prefix_with_layout.split("/", 3)[3]
    pattern = re.escape(path)
    pattern = re.sub(r"\\\{(\w+):DATE\\\}", r"\1=\\d{4}-\\d{2}-\\d{2}", pattern)
    pattern = re.sub(r"\\\{(\w+):STRING\\\}", r"\1=[^/]+", pattern)
    return pattern + "/[^/]+$"


def test_bigquery_tables_read_exactly_the_objects_the_code_writes(hcl):
    from datetime import datetime

    from saikika.core import objects, records

    day = datetime(2026, 11, 29, tzinfo=UTC)
    layouts = _table_layouts(hcl)
    assert set(layouts) == {"predictions", "batch_predictions"}
    run = objects.batch_run_folder(day, objects.batch_run_id("batch/input/a.jsonl", 17))
    written = {
        "predictions": [objects.predictions(day, "123456"), objects.http_predictions(day, "a1b2c3", 7)],
        "batch_predictions": [run + objects.batch_part(0, 2), run + objects.batch_part(1, 2)],
    }
    never = [
        run + objects.BATCH_SUCCESS_FILE,
        run + objects.BATCH_RUN_FILE,
        objects.rejected(day, "1"),
        objects.batch_errors_folder(day, "r") + objects.batch_part(0, 1),
        objects.feedback(day, "9"),
    ]
    for key, layout in layouts.items():
        assert layout["hive"]["require_partition_filter"] is True
        assert layout["hive"]["mode"] == "CUSTOM"
        assert layout["config"]["source_format"] == "NEWLINE_DELIMITED_JSON"
        for name in written[key]:
            assert _matches(layout["uri"], name), (key, name)
            assert re.match(_layout_regex(layout["prefix"]), name), (key, name, layout["prefix"])
        for other in [n for k, names in written.items() if k != key for n in names] + never:
            assert not _matches(layout["uri"], other), (key, other)
    # The schema names the record's fields (saikika.core.records) and the line's trace key.
    fields = {f["name"] for f in unwrap(local(hcl, "prediction_fields"))}
    assert fields == set(records.FIELDS)
    assert [t["name"] for t in layouts["predictions"]["table"]["traces"]] == ["message_id", "request_id"]
    assert [t["name"] for t in layouts["batch_predictions"]["table"]["traces"]] == ["run_id"]
    assert set(records.prediction("i", [], {}, "v", "t", run_id="r")) == set(records.FIELDS) | {"run_id"}


def test_the_feedback_tables_read_the_feedback_rows_and_nothing_else(hcl):
    """Loose feedback and compacted shards, each as its own table over the data bucket; never the manifest, base
    data, run records or another table's objects. The schema names every field a feedback row has."""
    from datetime import datetime

    from saikika.core import objects
    from saikika.core.events import PubSubMessage
    from saikika.core.items import Item
    from saikika.handlers.feedback import feedback_records

    day = datetime(2026, 11, 29, tzinfo=UTC)
    tables = unwrap(local(hcl, "feedback_tables"))
    config = unwrap(resources(hcl, "google_bigquery_table")["feedback"]["external_data_configuration"])
    hive = unwrap(config["hive_partitioning_options"])
    assert hive["require_partition_filter"] is True and hive["mode"] == "CUSTOM"
    written = {
        "feedback": [objects.feedback(day, "123")],
        "feedback_compacted": [objects.compacted_shard("2026-11-29", day, "ab" * 32)],
    }
    never = [
        objects.COMPACTION_MANIFEST,
        objects.base_training("catalogue.jsonl"),
        objects.retrain_run(day),
        objects.retrain_pending("training/feedback/dt=2026-11-29/1.jsonl", 1, day),
        "eval/holdout.jsonl",
    ]
    for key, table in tables.items():
        uri = unwrap(config["source_uris"]).replace("${each.value.prefix}", table["prefix"])
        prefix = hive["source_uri_prefix"].replace("${each.value.prefix}", table["prefix"])
        prefix = prefix.replace("${each.value.layout}", table["layout"])
        assert uri.startswith("gs://${google_storage_bucket.data.name}/")
        for name in written[key]:
            assert _matches(uri, name) and re.match(_layout_regex(prefix), name), (key, name)
        for other in [n for k, names in written.items() if k != key for n in names] + never:
            assert not _matches(uri, other), (key, other)
    fields = {f["name"] for f in unwrap(local(hcl, "feedback_fields"))}
    message = PubSubMessage("1", b"", day, {"source": "moderation"})
    [row] = feedback_records([Item("i", title="t", tags=("x",), labels=("a",))], message, day)
    assert set(row) == fields


def test_the_latest_view_reads_both_tables_within_a_partition_bound(hcl):
    view = unwrap(unwrap(resources(hcl, "google_bigquery_table")["latest_predictions"]["view"])["query"])
    assert 'google_bigquery_table.predictions["predictions"]' in view
    assert 'google_bigquery_table.predictions["batch_predictions"]' in view
    assert view.count("WHERE dt >=") == 2
    assert "PARTITION BY id ORDER BY predicted_at DESC" in view


def test_batch_inputs_reach_only_the_batch_function(hcl):
    from saikika.core import objects

    notifications = terraform_hcl.storage_notifications(hcl)
    assert ("data", objects.BATCH_INPUT_PREFIX, ["batch"]) in notifications
    assert ("data", objects.TRAINING_PREFIX, ["retrain"]) in notifications
    env = unwrap(local(hcl, "settings_env"))
    assert "catalogue/*.jsonl" in str(env) and objects.CATALOGUE_PREFIX == "catalogue/"


def test_the_retrain_tick_and_the_training_job_match_the_code(hcl):
    jobs = resources(hcl, "google_cloud_scheduler_job")
    tick = jobs["retrain_tick"]
    assert unwrap(tick["pubsub_target"])["topic_name"] == "${google_pubsub_topic.retrain_requests.id}"
    assert "force" not in unwrap(tick["pubsub_target"])["data"]  # a tick never forces a run
    variables = {name: body for block in hcl["variable"] for name, body in block.items()}
    assert variables["retrain_tick_schedule"]["default"] == "* * * * *"
    env = unwrap(local(hcl, "settings_env"))
    assert "local.training_job_id" in str(env) and '"cloudrun"' in str(env) or "cloudrun" in str(env)
    training = resources(hcl, "google_cloud_run_v2_job")["training"]
    assert training["name"] == "${local.training_job_name}"
    assert "jobs/${local.training_job_name}" in unwrap(local(hcl, "training_job_id"))
    grant = resources(hcl, "google_cloud_run_v2_job_iam_member")["retrain_runs_training"]
    assert grant["role"] == "roles/run.jobsExecutorWithOverrides"
    assert grant["member"] == 'serviceAccount:${google_service_account.fn["retrain"].email}'
    # The job runs the training job's entry point (the Dockerfile's ENTRYPOINT) with the launcher's arguments.
    dockerfile = (REPO / "training_job" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "saikika.handlers.training_job"]' in dockerfile
    from saikika.cloud import launchers

    assert launchers.TRAINING_ENTRY_MODULE == "saikika.handlers.training_job"
