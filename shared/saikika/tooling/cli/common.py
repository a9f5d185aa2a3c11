"""What every family of commands shares: the console the commands report on, progress bars, the settings, the
models bucket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console

console = Console(stderr=True)


def _settings():
    from saikika.core.errors import ConfigError
    from saikika.core.settings import Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"{exc} (for the local stack: set -a; . .saikika/local.env; set +a)") from exc


def _models_bucket():
    """The models bucket, once its endpoint has answered: a stopped stack is one line within seconds."""
    from saikika.cloud import gcs

    settings = _settings()
    return gcs.answering_bucket(settings.project, settings.models_bucket)


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total; total 0 when unknown) that draws one bar per stage on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total or None)
            progress.update(tasks[stage], completed=done)

        yield report
