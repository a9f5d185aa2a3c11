"""The docs' sessions run as written: each ```sh block of docs/cli.md under a `<!-- session: NAME -->` marker is
run by bash, in order, from a folder laid out like the repository's root (`.venv` and `functions/` there), after
`. .venv/bin/activate` as the page says: the first session without the cloud, then the local stack by hand
(`saikika local up &`, gcloud publishing an item and reading its prediction back, curl, `models list`,
`monitor`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from tests.integration.helpers import REPO

pytestmark = pytest.mark.emulators

PAGE = REPO / "docs" / "cli.md"
SESSION = re.compile(r"<!-- session: ([\w-]+) -->\n```sh\n(.*?)```", re.S)


def sessions() -> dict[str, str]:
    found = dict(SESSION.findall(PAGE.read_text(encoding="utf-8")))
    assert set(found) == {"command-line", "local-stack"}, f"sessions in {PAGE}: {sorted(found)}"
    return found


def run_session(folder, script: str, timeout_s: float) -> subprocess.CompletedProcess:
    """bash -e, as a person pasting the block would see it stop at the first failing command; in a process group
    of its own, killed whole if it overruns (a stack it started goes with it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAIKIKA_", "CLOUDSDK_", "VIRTUAL_ENV"))}
    env.pop("PUBSUB_EMULATOR_HOST", None)
    env.pop("STORAGE_EMULATOR_HOST", None)
    process = subprocess.Popen(
        ["bash", "-e", "-c", f". .venv/bin/activate\n{script}"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkout")
    for name in (".venv", "functions"):
        (folder / name).symlink_to(REPO / name)
    return folder


def test_the_command_line_session_runs_as_written(checkout):
    done = run_session(checkout, sessions()["command-line"], timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (checkout / "model" / "metadata.json").exists() and (checkout / "metrics.json").exists()
    assert list((checkout / "scored").glob("part-*.jsonl")) and (checkout / "scored" / "_SUCCESS").exists()
    assert "Traceback" not in done.stderr


def test_the_local_stack_session_publishes_reads_back_and_stops(checkout):
    if not (checkout / "model" / "metadata.json").exists():
        pytest.skip("needs the command-line session's model/ (run the module, not this test alone)")
    done = run_session(checkout, sessions()["local-stack"], timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # What gcloud storage cat printed: the prediction of the published item, read back from the local bucket.
    read_back = [line for line in done.stdout.splitlines() if line.startswith('{"id": "a1"')]
    assert read_back and '"model_version"' in read_back[0], done.stdout[-3000:]
    assert '"predictions"' in done.stdout  # curl: predict_http's answer
    assert "★" in done.stdout or "★" in done.stderr  # models list marks the champion
    assert (checkout / "page" / "index.html").is_file() and (checkout / "page" / "summary.json").is_file()
    assert not (checkout / ".saikika" / "local.env").exists()  # the stack stopped (kill %1; wait)
