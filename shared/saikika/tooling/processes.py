"""The local stack's child processes: each leads its own process group (and session) and is stopped as a
group, so a child's own children (the Pub/Sub emulator's Java) never outlive the stack.

Each child logs to `<state_dir>/logs/<name>.log`; `<state_dir>/pids` lists the running ones for inspection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from pathlib import Path

from saikika.core.errors import SaikikaError

# How long a stopped child has to exit after SIGTERM before its group is killed.
STOP_GRACE_S = 10
# In the state folder: the running children's pids, one per line, rewritten at each start and stop.
PIDS_FILE = "pids"


class StackError(SaikikaError, RuntimeError):
    """The local stack cannot start or a part of it died; the message says which and where its log is."""


def alive_pids(state_dir: Path) -> list[int]:
    """The pids the process groups of `state_dir` last listed that still run (none if nothing was listed)."""
    listed = state_dir / PIDS_FILE
    pids = [int(pid) for pid in listed.read_text().split()] if listed.exists() else []
    return [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_http(url: str, timeout_s: float, process: subprocess.Popen, what: str, log_file: Path) -> None:
    """Return once `url` answers at all; StackError (with the log's tail) if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode}; see {log_file}:\n{tail(log_file)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered (a GET on a CloudEvent function is a 4xx), which is all readiness means here
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    raise StackError(f"{what} did not answer at {url} within {timeout_s:.0f} s; see {log_file}:\n{tail(log_file)}")


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


class ProcessGroups:
    """Named children, each in a process group of its own: spawn, wait for, kill, stop; newest stopped first."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.running: list[tuple[str, subprocess.Popen]] = []
        self._ever_started: set[str] = set()

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def spawn(self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
        # A restarted child appends to the log of the instance before it.
        self.log_path(name).parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path(name).open("ab" if name in self._ever_started else "wb")
        self._ever_started.add(name)
        process = subprocess.Popen(
            args,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group, stopped as one
        )
        log_file.close()
        self.running.append((name, process))
        self._write_pids()
        return process

    def process(self, name: str) -> subprocess.Popen:
        for running_name, process in self.running:
            if running_name == name:
                return process
        raise StackError(f"no running {name}")

    def wait_http(self, name: str, url: str, timeout_s: float, what: str) -> None:
        wait_http(url, timeout_s, self.process(name), what, self.log_path(name))

    def pids(self) -> list[int]:
        return [process.pid for _, process in self.running]

    def check_alive(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                raise StackError(f"{name} exited with code {process.returncode}; see {self.log_path(name)}")

    def kill(self, name: str) -> None:
        """SIGKILL one child's group at once, as a crash would end it."""
        process = self.process(name)
        _signal_group(process, signal.SIGKILL)
        process.wait()
        self.running.remove((name, process))

    def stop(self, names: Collection[str] | None = None) -> None:
        """Stop the named groups (default: all), together: SIGTERM, then SIGKILL after a grace period."""
        stopping = [(n, p) for n, p in reversed(self.running) if names is None or n in names]
        for _, process in stopping:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for entry in stopping:
            process = entry[1]
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may hold children (the emulator's Java) that outlive their parent.
            _signal_group(process, signal.SIGKILL)
            process.wait()
            self.running.remove(entry)
        self._write_pids()

    def _write_pids(self) -> None:
        (self.state_dir / PIDS_FILE).write_text("".join(f"{pid}\n" for pid in self.pids()))
