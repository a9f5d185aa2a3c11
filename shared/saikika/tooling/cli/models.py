"""`saikika models …`: the versions in the models bucket, pushed, listed, promoted by hand, rolled back."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from saikika.tooling.cli.common import _models_bucket, console


@click.group()
def models() -> None:
    """Model versions in the models bucket."""


@models.command("push")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--promote", is_flag=True, help="Also point models/champion.json at it.")
def models_push(model_dir: Path, promote: bool) -> None:
    """Upload a trained model folder to gs://$SAIKIKA_MODELS_BUCKET/models/<version>/."""
    from saikika.cloud import registry
    from saikika.core import objects
    from saikika.model import artifact

    files = artifact.read_dir(model_dir)
    _validate(files)  # refuse to upload what the promote function or a predictor would refuse
    bucket = _models_bucket()
    version = registry.push(bucket, *files)
    console.print(f"pushed {version} → gs://{bucket.name}/{objects.version_prefix(version)}")
    if promote:
        _promote_by_hand(bucket, files.metadata, "promoted by hand (models push --promote)")


def _validate(files) -> None:
    from saikika.core.errors import ModelIntegrityError
    from saikika.model import validation

    try:
        validation.validate(files)
    except ModelIntegrityError as exc:
        raise click.ClickException(f"refused: {exc}") from exc


def _promote_by_hand(bucket, metadata: dict, reason: str) -> None:
    """Compare-and-swap the pointer and log the decision, as the promote function does."""
    from saikika.cloud import registry

    try:
        champion, previous = registry.promote_by_hand(bucket, metadata, reason)
    except registry.ChampionChanged as exc:
        raise click.ClickException(f"{exc}; nothing was changed, run it again") from exc
    console.print(f"champion is now {champion.version}" + (f" (was {previous.version})" if previous else ""))


@models.command("list")
def models_list() -> None:
    """Versions with their metrics and decision; the champion is marked."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    champion = registry.read_champion(bucket)
    table = Table(title=f"gs://{bucket.name}/models/")
    for column in ("", "version", "rows", "micro F1", "macro F1", "top-1", "decision", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for version in registry.versions(bucket):
        metadata = registry.read_metadata(bucket, version)
        decision = registry.read_decision(bucket, version)
        metrics = metadata.get("metrics", {})
        table.add_row(
            "★" if champion and champion.version == version else "",
            version,
            str(metadata.get("rows_used", "")),
            _fmt(metrics.get("micro_f1")),
            _fmt(metrics.get("macro_f1")),
            _fmt(metrics.get("top1_accuracy")),
            decision["outcome"] if decision else "—",
            (decision.get("reason", "") if decision else "")[:60],
        )
    Console(width=max(Console().width, 160)).print(table)
    if champion is None:
        Console().print("no champion yet")


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


@models.command("promote")
@click.argument("version")
def models_promote(version: str) -> None:
    """Make VERSION the champion by hand (compare-and-swap; the model is verified first)."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    found = registry.read_version(bucket, version)
    if found is None:
        raise click.ClickException(f"no committed version {version} (models/{version}/metadata.json is missing)")
    _validate(found)  # refuse what the promote function or a predictor would refuse
    _promote_by_hand(bucket, found.metadata, "promoted by hand (saikika models promote)")


@models.command("rollback")
def models_rollback() -> None:
    """Point the champion back at the previous one (compare-and-swap)."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    try:
        restored, current = registry.rollback_by_hand(bucket)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except registry.ChampionChanged as exc:
        raise click.ClickException(f"{exc}; nothing was changed, run it again") from exc
    console.print(f"champion rolled back to {restored.version} (was {current.version})")


COMMANDS = (models,)
