"""What each function really writes, observed on the storage emulator, and what follows from it: no function's
trigger (bucket notification prefix in terraform, then its own code filter) fires on its own writes, and the
chain only goes one way, feedback → retrain → promote.

Each function runs alone on a stack of its own (nothing else can write), its scenario covers good and bad input,
and its writes are the objects that appear or change in the three buckets, less what the test itself wrote.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from saikika.cloud import registry
from saikika.core import objects, rows
from saikika.model import catalogue
from saikika.tooling.local_stack import FUNCTIONS, LocalStack
from saikika.tooling.polling import wait_until
from tests import terraform_hcl
from tests.integration.helpers import REPO, publish, today, wait_for_blob, wait_for_prediction_lines, wait_for_rejected

pytestmark = pytest.mark.emulators

ROLES = terraform_hcl.ROLES
# Each function's own filter on the storage events it is sent (what its code ignores, it never acts on).
CODE_FILTERS = {
    "retrain": objects.is_training_object,
    "promote": lambda name: bool(objects.version_of_metadata(name)),
    "batch": objects.is_batch_input,
}


def listing(stack: LocalStack) -> dict[tuple[str, str], int]:
    client = stack.storage_client()
    return {
        (role, blob.name): int(blob.generation)
        for role in ROLES
        for blob in client.bucket(stack.env[f"SAIKIKA_{role.upper()}_BUCKET"]).list_blobs()
    }


def scenario_predict(stack, bucket, model_files):
    registry.push(bucket("models"), *model_files)
    registry.set_champion(bucket("models"), model_files.metadata, None, reason="test")
    before = listing(stack)
    publisher = stack.publisher()
    good = publish(stack, publisher, b'{"items": [{"id": "w1", "title": "waterproof tent"}, {"title": "no id"}]}')
    bad = publish(stack, publisher, b"not json")
    wait_for_prediction_lines(bucket("predictions"), good)
    wait_for_rejected(bucket("predictions"), good)
    wait_for_rejected(bucket("predictions"), bad)
    return before


def scenario_predict_http(stack, bucket, model_files):
    registry.push(bucket("models"), *model_files)
    registry.set_champion(bucket("models"), model_files.metadata, None, reason="test")
    before = listing(stack)
    for body in (b'{"instances": [{"id": "h1", "title": "tent"}]}', b'{"instances": [{"id": "bad"}]}', b"x"):
        request = urllib.request.Request(
            stack.env["SAIKIKA_PREDICT_URL"], data=body, headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except urllib.error.HTTPError:
            pass  # the 400s are part of the scenario
    # The answered request is logged (SAIKIKA_HTTP_LOG_SAMPLING defaults to 1): written at the latest when the
    # instance is stopped (test_http_request_log waits out the flush interval; this test need not).
    stack.stop_function("predict_http")
    http_log = f"predictions/dt={today():%Y-%m-%d}/{objects.HTTP_PREDICTIONS_MARK}"
    assert list(bucket("predictions").list_blobs(prefix=http_log)), "predict_http's request log"
    return before


def scenario_feedback(stack, bucket, model_files):
    before = listing(stack)
    publisher = stack.publisher()
    good = publish(
        stack,
        publisher,
        b'{"items": [{"id": "f1", "title": "tent", "labels": ["waterproof"]}, {"id": "x"}]}',
        topic="feedback",
    )
    wait_for_blob(bucket("data"), objects.feedback(today(), good))
    wait_for_blob(bucket("predictions"), objects.rejected(today(), good, "feedback"))
    return before


def scenario_retrain(stack, bucket, model_files):
    # A champion older than the feedback below, so the run also writes its live quality under monitoring/quality/.
    registry.push(bucket("models"), *model_files)
    registry.set_champion(bucket("models"), model_files.metadata, None, reason="test")
    before = listing(stack)
    # Feedback too, so the run's compaction (shards and manifest under compacted/) is among the observed writes.
    feedback_name = objects.feedback(today(), "w-1")
    row = {"id": "fw-1", "title": "tent", "labels": ["waterproof"], "event_time": today().isoformat()}
    bucket("data").blob(feedback_name).upload_from_string(json.dumps(row) + "\n")
    bucket("data").blob("training/base/catalogue.jsonl").upload_from_string(rows.dumps(catalogue.generate(400, seed=3)))
    before[("data", "training/base/catalogue.jsonl")] = -1  # the test's own writes
    before[("data", feedback_name)] = -1
    wait_until(
        "a run recorded and the lease released",
        lambda: (
            any(b.name.startswith(objects.RETRAIN_RUNS_PREFIX) for b in bucket("models").list_blobs())
            and json.loads(bucket("models").blob(objects.RETRAIN_LEASE_OBJECT).download_as_bytes())["holder"] is None
        ),
        timeout_s=120,
    )
    return before


def scenario_promote(stack, bucket, model_files):
    before = listing(stack)
    registry.push(bucket("models"), *model_files)  # the test's own writes, metadata.json last: promote reacts
    for name in (objects.MODEL_FILE, objects.INFERENCE_FILE, objects.METADATA_FILE):
        before[("models", objects.version_file(model_files.metadata["version"], name))] = -1
    wait_until(
        "the version judged and logged",
        lambda: (
            registry.read_decision(bucket("models"), model_files.metadata["version"])
            and registry.decision_log(bucket("models"))
        ),
        timeout_s=60,
    )
    return before


def scenario_batch(stack, bucket, model_files):
    registry.push(bucket("models"), *model_files)
    registry.set_champion(bucket("models"), model_files.metadata, None, reason="test")
    before = listing(stack)
    name = "batch/input/w.jsonl"
    bucket("data").blob(name).upload_from_string(b'{"id": "b1", "title": "waterproof tent"}\nnot json\n')
    before[("data", name)] = -1  # the test's own write
    blob = bucket("data").get_blob(name)
    run_id = objects.batch_run_id(name, blob.generation)
    wait_for_blob(
        bucket("predictions"), objects.batch_run_folder(blob.time_created, run_id) + objects.BATCH_SUCCESS_FILE
    )
    wait_for_blob(bucket("models"), objects.batch_drift(run_id))  # written after _SUCCESS
    return before


SCENARIOS = {
    "predict": scenario_predict,
    "predict_http": scenario_predict_http,
    "feedback": scenario_feedback,
    "retrain": scenario_retrain,
    "promote": scenario_promote,
    "batch": scenario_batch,
}


@pytest.fixture(scope="module")
def writes(tmp_path_factory, model_files) -> dict[str, set[tuple[str, str]]]:
    """Function → the (bucket role, object name) it wrote in its scenario, observed on the emulator."""
    assert set(SCENARIOS) == {spec.name for spec in FUNCTIONS}
    observed = {}
    for spec in FUNCTIONS:
        stack = LocalStack(
            state_dir=tmp_path_factory.mktemp(f"writes-{spec.name}"),
            functions_dir=REPO / "functions",
            functions=(spec,),
            extra_env={"SAIKIKA_RETRAIN_SETTLE_S": "0", "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "0"},
        ).start()
        try:
            client = stack.storage_client()

            def bucket(role, client=client, stack=stack):
                return client.bucket(stack.env[f"SAIKIKA_{role.upper()}_BUCKET"])

            before = SCENARIOS[spec.name](stack, bucket, model_files)
            after = listing(stack)
        finally:
            stack.stop()
        observed[spec.name] = {key for key, generation in after.items() if before.get(key) not in (generation, -1)}
    return observed


def test_each_function_writes_only_its_own_objects(writes):
    expected_prefixes = {
        "predict": {("predictions", "predictions/dt="), ("predictions", "rejected/dt=")},
        "predict_http": {("predictions", "predictions/dt=")},
        "feedback": {("data", "training/feedback/dt="), ("predictions", "rejected/feedback/dt=")},
        "retrain": {
            ("models", objects.MODELS_PREFIX),
            ("models", "retrain/"),
            ("models", objects.LIVE_QUALITY_PREFIX),
            ("data", objects.COMPACTED_PREFIX),
        },
        "promote": {("models", objects.MODELS_PREFIX)},
        "batch": {
            ("predictions", objects.BATCH_OUTPUT_PREFIX + "dt="),
            ("predictions", objects.BATCH_ERRORS_PREFIX + "dt="),
            ("models", objects.BATCH_DRIFT_PREFIX),
        },
    }
    for function, written in writes.items():
        for role, name in written:
            assert any(role == r and name.startswith(p) for r, p in expected_prefixes[function]), (function, role, name)
        # Every kind of object the scenario should produce was produced.
        for role, prefix in expected_prefixes[function]:
            assert any(r == role and name.startswith(prefix) for r, name in written), (function, role, prefix)
    # predict_http writes its request log only: create-only objects of its own mark, beside the event path's.
    assert writes["predict_http"] and all(objects.HTTP_PREDICTIONS_MARK in name for _, name in writes["predict_http"])
    assert ("models", objects.CHAMPION_OBJECT) in writes["promote"]
    assert ("models", objects.CHAMPION_OBJECT) not in writes["retrain"]  # only promote moves the champion


def test_no_function_trigger_fires_on_what_that_function_writes(writes):
    notifications = terraform_hcl.storage_notifications(terraform_hcl.load())
    assert notifications
    for role, prefix, functions in notifications:
        for function in functions:
            own = [name for r, name in writes[function] if r == role and name.startswith(prefix)]
            # Where the bucket prefix cannot exclude a function's own writes, its code filter must.
            assert [name for name in own if CODE_FILTERS[function](name)] == [], (function, prefix)
    # The predictions bucket, where predict and feedback write, has no notification at all.
    assert "predictions" not in {role for role, _, _ in notifications}


def test_the_chain_goes_one_way(writes):
    # feedback → retrain: feedback writes training data; retrain → promote: retrain commits a version.
    assert any(r == "data" and objects.is_training_object(n) for r, n in writes["feedback"])
    assert any(r == "models" and objects.version_of_metadata(n) for r, n in writes["retrain"])
    # and never back: neither retrain nor promote writes training data (retrain's compaction writes compacted/,
    # which triggers nothing), promote commits no version.
    assert not any(r == "data" and objects.is_training_object(n) for r, n in writes["retrain"] | writes["promote"])
    assert not any(r == "data" for r, _ in writes["promote"])
    # batch writes its runs to the predictions bucket, which triggers nothing, and its label drift under
    # monitoring/ in the models bucket, outside the notification's models/ prefix.
    assert {r for r, _ in writes["batch"]} == {"predictions", "models"}
    assert all(n.startswith(objects.BATCH_DRIFT_PREFIX) for r, n in writes["batch"] if r == "models")
    assert not any(objects.version_of_metadata(n) for _, n in writes["promote"])


def allowed(binding: dict, name: str) -> bool:
    """terraform/iam.tf's condition for one binding, read the way its expression is built: a prefix with a
    {placeholder} is a template (extract(): the placeholder stands for what comes before the next literal)."""
    inside = any(
        re.match(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(prefix)), name) if "{" in prefix else name.startswith(prefix)
        for prefix in binding["prefixes"]
    )
    excluded = any(name.endswith(x) if x.startswith("/") else name.startswith(x) for x in binding["except"])
    return inside and not excluded


def test_iam_lets_each_function_write_what_it_writes_and_only_promote_move_the_champion(writes):
    bindings = terraform_hcl.unwrap(terraform_hcl.local(terraform_hcl.load(), "bucket_roles"))
    writers = {"roles/storage.objectCreator", "roles/storage.objectUser"}
    for function, written in writes.items():
        for role, name in written:
            assert any(
                b["account"] == function and b["bucket"] == role and b["role"] in writers and allowed(b, name)
                for b in bindings
            ), (function, role, name)
    for protected in (
        objects.CHAMPION_OBJECT,
        objects.decision_log_entry(today(), "v"),
        objects.version_file("v", objects.DECISION_FILE),
    ):
        may_write = {
            b["account"] for b in bindings if b["bucket"] == "models" and b["role"] in writers and allowed(b, protected)
        }
        assert may_write == {"promote"}, (protected, may_write)
    # Every binding is narrowed to prefixes; none covers a whole bucket.
    assert all(b["prefixes"] and "" not in b["prefixes"] for b in bindings)
