"""`saikika local up` and `saikika demo`: the local stack on the emulators, and the whole loop run on it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from saikika.tooling.cli.common import console


@click.group()
def local() -> None:
    """The local stack on the official emulators."""


@local.command("up")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
@click.option("--functions-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def local_up(state_dir: Path, functions_dir: Path | None) -> None:
    """Start the emulators and one functions-framework process per function; stop all on SIGINT/SIGTERM."""
    from saikika.tooling.local_stack import LocalStack, StackError

    _refuse_a_second_stack(state_dir)
    stopping = False

    def request_stop(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stack = LocalStack(
        state_dir=state_dir, functions_dir=functions_dir, on_started=lambda what: console.print(f"started {what}")
    )
    try:
        stack.start()
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        console.print(f"environment: {state_dir / 'local.env'}   logs: {state_dir / 'logs'}")
        print("READY", flush=True)
        while not stopping:
            stack.check_alive()
            time.sleep(0.2)
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        sys.exit(1)
    finally:
        stack.stop()
        console.print("stopped")


def _refuse_a_second_stack(state_dir: Path) -> None:
    """Two stacks in one state folder would share (and each delete) one local.env: one line instead."""
    from saikika.tooling.processes import alive_pids

    alive = alive_pids(state_dir)
    if alive:
        raise click.ClickException(
            f"a local stack is already running from {state_dir} (processes {', '.join(map(str, alive))}): use it "
            f"(set -a; . {state_dir / 'local.env'}; set +a), stop it first, or pass another --state-dir"
        )


@local.command("wait")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True, help="seconds")
def local_wait(state_dir: Path, timeout: float) -> None:
    """Return once a `saikika local up` started in the background is READY (its local.env is written)."""
    from saikika.tooling.local_stack import ENV_FILE
    from saikika.tooling.polling import wait_until

    env_file = state_dir / ENV_FILE
    if not env_file.exists():
        console.print(f"waiting up to {timeout:.0f} s for {env_file} (saikika local up writes it when READY)…")
    try:
        wait_until(f"{env_file}", env_file.exists, timeout_s=timeout, every_s=0.5)
    except TimeoutError:
        raise click.ClickException(
            f"no local stack became ready within {timeout:.0f} s ({env_file} was not written): is `saikika local up` "
            f"running? Its logs are in {state_dir / 'logs'}"
        ) from None
    print("READY", flush=True)


@click.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
def demo(state_dir: Path) -> None:
    """The main job: the whole loop on the local stack, on a synthetic catalogue."""
    from saikika.tooling.demo import run

    run(state_dir)


COMMANDS = (local, demo)
