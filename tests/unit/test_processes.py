"""The local stack's process groups on real child processes: a child's own children stop with it, a restarted
child appends to its log, a dead child is reported with its log."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from saikika.core.errors import SaikikaError
from saikika.tooling.polling import wait_until
from saikika.tooling.processes import ProcessGroups, StackError

# A child that starts a grandchild (as gcloud starts the emulator's Java), says so, and waits.
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "print('grandchild', child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _grandchild(children: ProcessGroups, name: str) -> int:
    def announced() -> int | None:
        for line in children.log_path(name).read_text().splitlines():
            if line.startswith("grandchild "):
                return int(line.split()[1])
        return None

    return wait_until("the grandchild to start", announced, timeout_s=30)


def test_stop_ends_each_child_with_its_own_children(tmp_path):
    children = ProcessGroups(tmp_path)
    try:
        children.spawn("parent", [sys.executable, "-c", PARENT], dict(os.environ))
        grandchild = _grandchild(children, "parent")
        assert children.pids() == [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    finally:
        children.stop()
    wait_until("the grandchild to be gone", lambda: not _alive(grandchild), timeout_s=10)
    assert children.pids() == []


def test_a_restarted_child_appends_to_its_log_and_a_dead_one_is_reported(tmp_path):
    children = ProcessGroups(tmp_path)
    try:
        children.spawn("worker", [sys.executable, "-c", "print('first', flush=True)"], dict(os.environ))
        wait_until("the first instance to exit", lambda: children.process("worker").poll() is not None, timeout_s=30)
        with pytest.raises(StackError, match=r"worker exited with code 0; see .*worker\.log"):
            children.check_alive()
        children.kill("worker")
        children.spawn("worker", [sys.executable, "-c", "print('second', flush=True)"], dict(os.environ))
        wait_until("the second instance to exit", lambda: children.process("worker").poll() is not None, timeout_s=30)
        assert children.log_path("worker").read_text().split() == ["first", "second"]
    finally:
        children.stop()


def test_a_stack_error_is_a_saikika_error():
    with pytest.raises(SaikikaError):
        ProcessGroups(Path("/nonexistent")).process("nothing")
