"""What every family of commands shares: the console the commands report on, progress bars, the settings, the
models bucket."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

# Not a terminal (a pipe, a log, CI): lines are left whole rather than cut at rich's 80 columns mid-sentence.
console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


LOCAL_ENV_FILE = Path(".saikika") / "local.env"


def use_local_stack(env_file: Path = LOCAL_ENV_FILE) -> None:
    """Without settings in the environment, the running local stack's (`saikika local up` writes them to
    `.saikika/local.env`)."""
    from saikika.tooling.local_stack import use_env_file

    use_env_file(env_file, unless_set="SAIKIKA_MODELS_BUCKET")


def _settings():
    from saikika.core.errors import ConfigError
    from saikika.core.settings import Settings

    use_local_stack()
    try:
        return Settings.from_env()
    except ConfigError as exc:
        # A ConfigError still: one line, or its traceback with `saikika --debug` (cli.mistakes).
        raise ConfigError(
            f"{exc}: start the local stack (saikika local up, in this folder), or set a deployment's settings "
            "(docs/configuration.md)"
        ) from exc


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
