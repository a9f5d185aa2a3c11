"""A user's mistakes told in one line: the `main` group runs every command through `Group`, which turns
saikika's own errors, unreadable files and an unreachable Cloud Storage into a `click.ClickException` (one line
on stderr, exit 1). Anything else is a bug and keeps its traceback; `saikika --debug` (or
`SAIKIKA_LOG_LEVEL=DEBUG`) keeps every traceback."""

from __future__ import annotations

import os

import click

DEBUG_HELP = "Show the traceback behind an error, and every library's warnings (also: SAIKIKA_LOG_LEVEL=DEBUG)."


def debugging(ctx: click.Context | None = None) -> bool:
    """Whether the user asked for tracebacks: `saikika --debug …` or SAIKIKA_LOG_LEVEL=DEBUG."""
    from saikika.core.errors import ConfigError
    from saikika.core.settings import VARIABLES

    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("debug"):
        return True
    level = next(variable for variable in VARIABLES if variable.field == "log_level")
    try:
        return level.read(os.environ) == "DEBUG"
    except ConfigError:
        return False


def one_line(exc: BaseException) -> str | None:
    """What a user can do something about, as one sentence; None for a bug (which keeps its traceback)."""
    from saikika.core.errors import SaikikaError

    if _reaches_storage(exc):
        return _unreachable()
    if isinstance(exc, SaikikaError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file or folder; check the path"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a folder; name a file"
    if isinstance(exc, NotADirectoryError):
        return f"{exc.filename}: a file stands where a folder is needed; choose another path"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied; choose a path you can read and write"
    return None


def _reaches_storage(exc: BaseException) -> bool:
    import sys

    if "google.cloud.storage" not in sys.modules:
        return False  # nothing talked to Cloud Storage (and importing it here would slow every error down)
    from saikika.cloud import gcs

    return isinstance(exc, gcs.StorageUnreachable) or gcs.is_unreachable(exc)


def _unreachable() -> str:
    from saikika.cloud import gcs

    where = gcs.endpoint()
    if where == gcs.PUBLIC_ENDPOINT:
        return f"cannot reach Cloud Storage at {where}: check the network connection"
    return f"cannot reach Cloud Storage at {where}: is `saikika local up` running? (STORAGE_EMULATOR_HOST points there)"


class Group(click.Group):
    """A click group whose commands' mistakes end in one line (`one_line`), unless the user asked for tracebacks."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            message = one_line(exc)
            if message is None or debugging(ctx):
                raise
            raise click.ClickException(" ".join(message.split())) from exc
