"""Loop health on the emulators: a loop whose runs keep failing turns `monitoring/health.json` stalled and the retrain
function writes the ERROR `loop health` line the stalled-loop alert matches, which `saikika status` (a real
process) shows with its exit code; the session stack, with its champion and nothing pending, is ok after a tick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from saikika.cloud import gcs
from saikika.cloud import health as health_step
from saikika.core import jsonl, objects, rows
from saikika.core.settings import Settings
from saikika.model import catalogue
from saikika.model.artifact import sha256_hex
from saikika.tooling.local_stack import FUNCTIONS, RETRAIN_REQUESTS_TOPIC, LocalStack
from tests import alert_filters
from tests.integration.helpers import REPO, count_requests, promote, publish, wait_until

pytestmark = pytest.mark.emulators

VECTORS = "word-vectors/title-words-000000000000.npz"


@pytest.fixture(scope="module")
def failing_stack(tmp_path_factory):
    """Only the retrain function (nothing else takes part), whose every run fails: the word vectors the settings
    name are not the bytes stored there. Two failed runs in a row stall the loop."""
    stack = LocalStack(
        state_dir=tmp_path_factory.mktemp("health-stalled"),
        functions_dir=REPO / "functions",
        functions=tuple(spec for spec in FUNCTIONS if spec.name == "retrain"),
        retrain_tick_s=1.0,
        extra_env={
            "SAIKIKA_RETRAIN_SETTLE_S": "1",
            "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "2",
            "SAIKIKA_WORD_VECTORS": VECTORS,
            "SAIKIKA_WORD_VECTORS_SHA256": sha256_hex(b"the vectors the settings name"),
            "SAIKIKA_STALL_FAILED_RUNS": "2",
        },
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def health(models) -> dict | None:
    found = gcs.read_json(models, objects.HEALTH_OBJECT)
    return found[0] if found else None


def status_command(stack: LocalStack, *args: str) -> subprocess.CompletedProcess:
    """`saikika status` as a person runs it, with the stack's local.env settings (this tree's interpreter)."""
    env = {**os.environ, **stack.env, "COLUMNS": "200"}
    command = [sys.executable, "-m", "saikika.tooling.cli", "status", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def log_lines(stack: LocalStack, message: str) -> list[dict]:
    """The retrain function's stdout lines (LocalStack keeps each function's under logs/) with this message."""
    text = (stack.state_dir / "logs" / "function-retrain.log").read_text(errors="replace")
    found = []
    for line in jsonl.lines(text):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the framework's own lines
        if isinstance(entry, dict) and entry.get("message") == message:
            found.append(entry)
    return found


def failed_runs(models) -> list[dict]:
    records = (gcs.read_json(models, b.name) for b in models.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX))
    return [found[0] for found in records if found and found[0]["status"] == "failed"]


def test_a_loop_whose_runs_keep_failing_is_stalled_and_says_so(failing_stack):
    client = failing_stack.storage_client()
    data, models = (client.bucket(failing_stack.env[f"SAIKIKA_{k}_BUCKET"]) for k in ("DATA", "MODELS"))
    models.blob(VECTORS).upload_from_string(b"not the vectors the settings name")

    data.blob("training/base/a.jsonl").upload_from_string(rows.dumps(catalogue.generate(300, seed=7)))
    wait_until("a failed run", lambda: failed_runs(models), 120)
    one = wait_until(
        "health counting one failed run", lambda: (h := health(models)) and h["consecutive_failed_runs"] == 1 and h, 60
    )
    assert one["status"] == "no-champion" and one["last_run"]["status"] == "failed"

    data.blob("training/base/b.jsonl").upload_from_string(rows.dumps(catalogue.generate(300, seed=8, id_prefix="b")))
    stalled = wait_until("a stalled loop", lambda: (h := health(models)) and h["status"] == "stalled" and h, 120)
    assert stalled["consecutive_failed_runs"] == 2 == len(failed_runs(models))
    assert stalled["problems"][0].startswith("2 failed runs in a row (SAIKIKA_STALL_FAILED_RUNS=2): last reason ")
    assert "SAIKIKA_WORD_VECTORS_SHA256" in stalled["problems"][0]
    assert stalled["problems"][1:] == ["no champion: nothing is served until a version is promoted"]
    assert (
        stalled["cursors"]["runs"] == sorted(b.name for b in models.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX))[-1]
    )
    assert stalled["pending"] == {"count": 0, "oldest_age_s": None} and stalled["rejected_inputs_today"] == 0

    # The line the stalled-loop alert matches: jsonPayload.message="loop health" AND jsonPayload.status="stalled".
    lines = wait_until(
        "the stalled line", lambda: [e for e in log_lines(failing_stack, "loop health") if e["status"] == "stalled"], 30
    )
    print("retrain function's line:", json.dumps(lines[0], ensure_ascii=False))
    assert lines[0]["severity"] == "ERROR" and lines[0]["consecutive_failed_runs"] == 2
    assert lines[0]["problems"][0].startswith("2 failed runs in a row")
    assert {"champion_version", "champion_age_s", "pending", "oldest_pending_age_s", "live_micro_f1", "drift"} <= set(
        lines[0]
    )
    assert all(
        e["severity"] == "WARNING" for e in log_lines(failing_stack, "loop health") if e["status"] == "no-champion"
    )
    assert not log_lines(failing_stack, "loop health not computed")
    # What Cloud Monitoring would make of the lines, as terraform deploys the alerts and the run-outcome metric.
    assert alert_filters.fires("loop_stalled", lines[0]) and alert_filters.fires("errors", lines[0])
    outcomes = [e for e in log_lines(failing_stack, "retrain failed") if "status" in e]
    assert outcomes and all(alert_filters.fires("retrain_runs", e) for e in outcomes)
    print("retrain function's run outcome:", json.dumps(outcomes[0], ensure_ascii=False))
    assert {e["status"] for e in outcomes} == {"failed"}
    assert not any(alert_filters.fires("retrain_runs", e) for e in log_lines(failing_stack, "loop health"))

    shown = status_command(failing_stack)
    assert shown.returncode == 4, shown.stderr
    assert "stalled" in shown.stdout and "2 failed runs in a row" in shown.stdout, shown.stdout
    as_json = status_command(failing_stack, "--json")
    assert as_json.returncode == 4 and json.loads(as_json.stdout)["consecutive_failed_runs"] == 2
    # Every tick since counted only the records after its cursor: the two failures are never counted again.
    later = wait_until(
        "a later tick's stalled line",
        lambda: (
            len(found := [e for e in log_lines(failing_stack, "loop health") if e["status"] == "stalled"]) > len(lines)
            and found
        ),
        30,
    )
    assert {e["consecutive_failed_runs"] for e in later} == {2}

    # A tick with its cursors stored lists from them and reads no run record or decision it counted before.
    calls = count_requests(client)
    settings = Settings.from_env({**failing_stack.env, **failing_stack.extra_env})
    assessed = health_step.update(settings, client, time.time())
    assert assessed.status == "stalled" and assessed.consecutive_failed_runs == 2
    runs, decisions = objects.RETRAIN_RUNS_PREFIX, objects.DECISION_LOG_PREFIX
    assert not [c for c in calls if quote(runs, safe="") in c or quote(decisions, safe="") in c], calls
    # Whatever the history: the previous health, the pointer, the state, today's drift (no champion: no metadata);
    # five listings (pending, runs, decisions, live quality from the cursors; today's rejected items); one write.
    assert len([c for c in calls if "/download/" in c]) == 4, calls
    assert len([c for c in calls if c.startswith("GET") and c.endswith("/o")]) == 5, calls
    assert len([c for c in calls if c.startswith("POST")]) == 1, calls


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory, model_files):
    """The retrain function alone with the default settings and a champion: a loop with nothing to do (the session
    stack holds what other tests did to it: skewed items, rejected inputs)."""
    stack = LocalStack(
        state_dir=tmp_path_factory.mktemp("health-ok"),
        functions_dir=REPO / "functions",
        functions=tuple(spec for spec in FUNCTIONS if spec.name == "retrain"),
    )
    try:
        stack.start()
        promote(stack, model_files)
        yield stack
    finally:
        stack.stop()


def test_a_champion_and_nothing_pending_is_ok_after_a_tick(quiet_stack):
    """Default settings: the tick (a retrain-requests message, as Cloud Scheduler's) writes the health."""
    stack, publisher = quiet_stack, quiet_stack.publisher()
    models = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
    # Before the first tick (the stack sends it a minute after it starts): one line saying to wait, exit 1.
    early = status_command(stack)
    assert early.returncode == 1 and "Traceback" not in early.stderr, early.stderr
    assert early.stderr.startswith("Error: no loop health yet") and "try again in a minute" in early.stderr
    asked = time.time()
    publish(stack, publisher, b'{"reason": "health check"}', topic=RETRAIN_REQUESTS_TOPIC)
    fresh = wait_until(
        "a health written after the tick",
        lambda: (h := health(models)) and _epoch(h["checked_at"]) >= asked and h,
        90,
    )
    assert fresh["status"] == "ok" and fresh["problems"] == [], fresh
    champion = fresh["champion"]
    assert champion["version"] == gcs.read_json(models, objects.CHAMPION_OBJECT)[0]["version"]
    assert champion["offline_micro_f1"] > 0 and champion["age_s"] >= 0
    assert fresh["consecutive_failed_runs"] == 0 and fresh["pending"]["count"] == 0

    assert any(e["status"] == "ok" and e["severity"] == "INFO" for e in log_lines(stack, "loop health"))
    shown = status_command(stack)
    assert shown.returncode == 0, shown.stderr
    assert "ok" in shown.stdout and champion["version"] in shown.stdout


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
