"""Local ports for the local stack's components, distinct within a stack and reserved across processes.

A port is picked free (bound to 0 by the kernel) long before its component binds it: the Pub/Sub emulator's JVM
takes seconds, and a function restarted after a crash takes its old port again. Two stacks started side by side
(pytest-xdist workers, `saikika local up` beside `make test`) could each be handed the same port in that window,
and a readiness check would then be answered by the other stack's server. So a stack reserves its ports: each is
one byte of `LOCK_FILE` locked (POSIX record lock) by the process that holds the stack, until the stack stops.
The kernel drops the locks of a process that dies, so a crash leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import threading
from collections.abc import Iterable
from contextlib import ExitStack, suppress
from pathlib import Path

from saikika.core.errors import SaikikaError

LOCK_FILE = Path(tempfile.gettempdir()) / "saikika-ports.lock"
# Rounds of picking before giving up: each round offers fresh free ports, so only a machine whose free ports are
# nearly all reserved runs out.
MAX_ROUNDS = 100

# POSIX record locks belong to the process, and closing any descriptor of the file drops all of them: one
# descriptor per process, never closed, and this process's own reservations kept in a set beside it.
_guard = threading.Lock()
_held: set[int] = set()
_descriptor: int | None = None


class PortsExhausted(SaikikaError, RuntimeError):
    """No free port could be reserved."""


def free_ports(count: int) -> list[int]:
    """`count` distinct free local ports, not reserved. The sockets are held open together while the kernel
    picks, since ports picked one after another repeat (a released port is offered again)."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


def reserve_ports(count: int) -> list[int]:
    """`count` distinct free ports that no other reservation (in this process or another) holds; held until
    `release_ports`."""
    with _guard:
        chosen: list[int] = []
        for _ in range(MAX_ROUNDS):
            for port in free_ports(count - len(chosen)):
                if port not in _held and port not in chosen and _lock(port):
                    chosen.append(port)
            if len(chosen) == count:
                _held.update(chosen)
                return chosen
        for port in chosen:
            _unlock(port)
    raise PortsExhausted(f"could not reserve {count} free local ports (reservations in {LOCK_FILE})")


def release_ports(ports: Iterable[int]) -> None:
    with _guard:
        for port in ports:
            if port in _held:
                _unlock(port)
                _held.discard(port)


def _lock_file() -> int:
    global _descriptor
    if _descriptor is None:
        try:
            _descriptor = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            with suppress(OSError):
                os.fchmod(_descriptor, 0o666)  # whoever creates it, other users' stacks lock in it too
        except PermissionError:  # another user's file we may not write: our own stacks still keep apart
            _descriptor = os.open(LOCK_FILE.with_name(f"saikika-ports-{os.getuid()}.lock"), os.O_RDWR | os.O_CREAT)
    return _descriptor


def _lock(port: int) -> bool:
    try:
        fcntl.lockf(_lock_file(), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
    except OSError:
        return False  # another process's stack holds it
    return True


def _unlock(port: int) -> None:
    fcntl.lockf(_lock_file(), fcntl.LOCK_UN, 1, port, os.SEEK_SET)
