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


@click.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
def demo(state_dir: Path) -> None:
    """The main job: the whole loop on the local stack, on a synthetic catalogue."""
    from saikika.tooling.demo import run

    run(state_dir)


COMMANDS = (local, demo)
