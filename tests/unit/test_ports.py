"""The local stack's ports: distinct within a stack, and never handed to two stacks running side by side (in two
processes, as pytest-xdist's workers or `saikika local up` beside `make test` run them)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from saikika.tooling import ports
from saikika.tooling.ports import free_ports, release_ports, reserve_ports

# Another process reserving ports, as a second stack does: it prints them and holds them until its stdin closes.
HOLDER = (
    "import sys\n"
    "from saikika.tooling.ports import reserve_ports\n"
    "print(*reserve_ports(int(sys.argv[1])), flush=True)\n"
    "sys.stdin.read()\n"
)


def test_free_ports_are_distinct_and_free():
    # Picked one after another, 300 ports repeat on every try (the kernel offers a released port again): a stack
    # whose components start side by side once gave a function fake-gcs-server's port.
    picked = free_ports(300)
    assert len(set(picked)) == len(picked)
    for port in picked[:20]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # released on return: usable by the component it is handed to


def test_ports_another_process_reserved_are_never_reserved_here():
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "300"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        theirs = {int(port) for port in holder.stdout.readline().split()}
        assert len(theirs) == 300
        # 3000 free ports picked here (300 at a time, within the usual 1024 open files) meet about 60 of theirs:
        # they are unbound, so the kernel offers them.
        mine = [port for _ in range(10) for port in _reserved_and_released(300)]
        assert not theirs & set(mine)
        offered = {port for _ in range(10) for port in free_ports(300)}
        assert theirs & offered, "the kernel never offered their ports: the check above proves nothing"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # Their process ended, and the kernel dropped its locks: the same ports can be reserved again.
    assert {port for _ in range(10) for port in _reserved_and_released(300)} & theirs


def test_a_process_reserves_each_port_once_until_released():
    first = reserve_ports(50)
    try:
        second = reserve_ports(50)
        assert not set(first) & set(second)
        release_ports(second)
    finally:
        release_ports(first)
    assert not (set(first) | set(second)) & ports._held  # a session's stacks in this process may hold others


def test_running_out_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(ports, "_lock", lambda _port: False)
    with pytest.raises(ports.PortsExhausted, match="could not reserve 2 free local ports"):
        reserve_ports(2)


def _reserved_and_released(count: int) -> list[int]:
    got = reserve_ports(count)
    release_ports(got)
    return got
