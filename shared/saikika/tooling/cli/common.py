"""What every family of commands shares: the console the commands report on, the settings, the models bucket."""

from __future__ import annotations

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
    from saikika.cloud import gcs

    settings = _settings()
    return gcs.client(settings.project).bucket(settings.models_bucket)
