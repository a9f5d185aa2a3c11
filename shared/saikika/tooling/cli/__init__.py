"""The `saikika` command: train, evaluate, push models, run the local stack and the demo.

One module per family of commands (`training`, `batch`, `models`, `word_vectors`, `package`, `local`, `analytics`,
`status`, `monitor`), each defining its commands with `@click.command()` / `@click.group()` and listing them in its
`COMMANDS`; `main` registers every family's `COMMANDS` below. To add a command, write it in its family's module (or a new module
for a new family) and add it to that module's `COMMANDS` (a new module also goes in `_FAMILIES`). Heavy imports
stay inside the commands, so `saikika --help` starts quickly. Every command's mistakes end in one line
(`mistakes.Group`); `saikika --debug …` shows their tracebacks.
"""

from __future__ import annotations

import click

from saikika.tooling.cli import (
    analytics,
    batch,
    local,
    mistakes,
    models,
    monitor,
    package,
    status,
    training,
    word_vectors,
)


@click.group(cls=mistakes.Group)
@click.option("--debug", is_flag=True, help=mistakes.DEBUG_HELP)
def main(debug: bool) -> None:  # noqa: ARG001  (read through the context by mistakes.debugging)
    """Saikika: event-driven label prediction for Google Cloud."""


_FAMILIES = (training, batch, models, word_vectors, package, local, analytics, status, monitor)
for _family in _FAMILIES:
    for _command in _family.COMMANDS:
        main.add_command(_command)
