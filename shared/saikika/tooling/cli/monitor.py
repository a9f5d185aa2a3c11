"""`saikika monitor`: the monitoring page (live quality, label drift, work per day, runs and decisions, the health
table) written from the `monitoring/` objects and the loop's records, of the local stack, the buckets, or a folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from saikika.tooling.cli.common import console, use_local_stack

if TYPE_CHECKING:
    from saikika.cloud.monitoring_source import Source

DEFAULT_OUT = Path(".saikika/monitor")


def write_page(source: Source, out: Path, days: int = 30, now: datetime | None = None) -> dict:
    """Read the window's objects from `source`, write `out/index.html`, its figures and `summary.json`; the summary."""
    from saikika.cloud import monitoring_source
    from saikika.core import monitoring_summary
    from saikika.model import monitoring_page

    now = now or datetime.now(UTC)
    found = monitoring_source.read(source, since=now - timedelta(days=days - 1))
    summary = monitoring_summary.summarise(found, now)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in monitoring_page.build(summary).items():
        (out / name).write_bytes(data)
    return summary


def bucket_source(models: str, env: dict[str, str]) -> Source:
    """The models bucket, and the data and predictions buckets where the settings name them."""
    from saikika.cloud import gcs, monitoring_source

    client = gcs.client(env.get("GOOGLE_CLOUD_PROJECT", "local"))
    names = {
        monitoring_source.MODELS: models,
        monitoring_source.DATA: env.get("SAIKIKA_DATA_BUCKET"),
        monitoring_source.PREDICTIONS: env.get("SAIKIKA_PREDICTIONS_BUCKET"),
    }
    return monitoring_source.BucketSource({kind: client.bucket(name) for kind, name in names.items() if name})


def resolve_source(source: str, state_dir: Path) -> Source:
    """`local` (the settings in the environment, else the local stack's local.env), `gs://MODELS_BUCKET`, or a
    folder laid out as FOLDER/<bucket kind>/<object name>."""
    from saikika.cloud import monitoring_source

    if source.startswith("gs://"):
        bucket = source[len("gs://") :].strip("/")
        if not bucket or "/" in bucket:
            raise click.ClickException(f"--source {source}: give the models bucket (gs://BUCKET), no folder in it")
        return bucket_source(bucket, dict(os.environ))
    if source != "local":
        folder = Path(source)
        if not folder.is_dir():
            raise click.ClickException(f"--source {source}: no such folder (or give local or gs://MODELS_BUCKET)")
        return monitoring_source.FolderSource(folder)
    env_file = state_dir / "local.env"
    use_local_stack(env_file)
    if not os.environ.get("SAIKIKA_MODELS_BUCKET"):
        raise click.ClickException(
            f"no stack to look at: give --source FOLDER or gs://MODELS_BUCKET, set SAIKIKA_MODELS_BUCKET, or start "
            f"the local stack (`saikika local up`, which writes {env_file})"
        )
    return bucket_source(os.environ["SAIKIKA_MODELS_BUCKET"], dict(os.environ))


@click.command("monitor")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True, help="Folder."
)
@click.option(
    "--source",
    default="local",
    show_default=True,
    help="local (the settings, else .saikika/local.env), gs://MODELS_BUCKET (the data and predictions buckets from "
    "the settings if set), or a FOLDER holding FOLDER/<data|models|predictions>/<object name>.",
)
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="The window, in days.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
def monitor(out: Path, source: str, days: int, state_dir: Path) -> None:
    """Write the monitoring page: OUT/index.html, its figures (PNG) and OUT/summary.json."""
    from saikika.cloud.monitoring_source import SourceError
    from saikika.core.monitoring_summary import headline_lines

    try:
        summary = write_page(resolve_source(source, state_dir), out, days)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"wrote {out / 'index.html'} (and summary.json, figures)")
    for line in headline_lines(summary):
        console.print(f"  {line}")


COMMANDS = (monitor,)
