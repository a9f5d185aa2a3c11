"""`saikika local up` as a user runs it: READY, a complete env file, a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from saikika.tooling.local_stack import FUNCTIONS
from saikika.tooling.polling import wait_until
from tests.integration.helpers import REPO

pytestmark = pytest.mark.emulators

ENV_KEYS = {
    "GOOGLE_CLOUD_PROJECT",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "SAIKIKA_DATA_BUCKET",
    "SAIKIKA_MODELS_BUCKET",
    "SAIKIKA_PREDICTIONS_BUCKET",
    "SAIKIKA_ITEMS_TOPIC",
    "SAIKIKA_FEEDBACK_TOPIC",
    "SAIKIKA_PREDICT_URL",
    "SAIKIKA_URL_PREDICT",
    "SAIKIKA_URL_PREDICT_HTTP",
    "SAIKIKA_URL_FEEDBACK",
    "SAIKIKA_URL_RETRAIN",
    "SAIKIKA_URL_PROMOTE",
    "SAIKIKA_RETRAIN_REQUESTS_TOPIC",
}


def _live_in_sessions(session_ids: set[int]) -> list[str]:
    """Processes (not zombies) whose session is one the stack started: what would be orphans."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session in session_ids and state != "Z":
            alive.append(text[:80])
    return alive


def test_local_up_serves_and_leaves_nothing_behind_after_sigterm(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "saikika.tooling.cli", "local", "up", "--state-dir", str(tmp_path / "state")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = process.stdout.readline().strip()
        assert ready == "READY", process.stderr.read()
        env = dict(line.split("=", 1) for line in (tmp_path / "state" / "local.env").read_text().splitlines())
        assert ENV_KEYS <= set(env)
        listening = [key for key in env if key.startswith("SAIKIKA_URL_") or key.endswith("_EMULATOR_HOST")]
        ports = {env[key].rsplit(":", 1)[1] for key in listening}
        assert len(ports) == len(listening) == 2 + len(FUNCTIONS), listening  # one port each, none shared
        with urllib.request.urlopen(env["SAIKIKA_PREDICT_URL"], timeout=30) as response:
            assert response.status == 200
        children = {int(pid) for pid in (tmp_path / "state" / "pids").read_text().split()}
        assert len(children) == 2 + len(FUNCTIONS)  # emulator, fake-gcs-server, one per function
        assert len(_live_in_sessions(children)) > len(children)  # the emulator's Java child is there too
        # A second stack in the same folder would share one local.env: refused in one line, the first untouched.
        second = subprocess.run(
            [sys.executable, "-m", "saikika.tooling.cli", "local", "up", "--state-dir", str(tmp_path / "state")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "already running" in second.stderr and "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert (tmp_path / "state" / "local.env").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0
    wait_until("every process of the stack to be gone", lambda: not _live_in_sessions(children), timeout_s=10)
    # Each component is told as it starts, all before the line printed just before READY.
    told = process.stderr.read().splitlines()
    ready_at = next(n for n, line in enumerate(told) if line.startswith("environment:"))
    for component in ("the Pub/Sub emulator", "fake-gcs-server", *(f"function {spec.name} " for spec in FUNCTIONS)):
        started = [n for n, line in enumerate(told) if line.startswith(f"started {component}")]
        assert started and started[0] < ready_at, (component, told)
