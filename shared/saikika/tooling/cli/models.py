"""`saikika models …`: the versions in the models bucket, pushed, listed, promoted by hand, rolled back."""

from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from saikika.core.decisions import PROMOTED_BY_HAND, PUSHED_AND_PROMOTED, story
from saikika.core.settings import Settings
from saikika.tooling.cli.common import _models_bucket, console

# Serving instances re-read the champion pointer every SAIKIKA_MODEL_TTL_S: a change is not served at once.
_PICKED_UP = (
    f"; predictors serve it within SAIKIKA_MODEL_TTL_S ({Settings.__dataclass_fields__['model_ttl_s'].default:g} s "
    "by default)"
)


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
        _promote_by_hand(bucket, files.metadata, PUSHED_AND_PROMOTED)


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
    console.print(
        f"champion is now {champion.version}" + (f" (was {previous.version})" if previous else "") + _PICKED_UP
    )


@models.command("list")
def models_list() -> None:
    """Versions with their metrics and what happened to each (promoted, rejected and why, promoted by push or by
    hand, rolled back); the champion is marked ★."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    champion = registry.read_champion(bucket)
    log = registry.decision_log(bucket)
    rows = []
    for version in registry.versions(bucket):
        metadata = registry.read_metadata(bucket, version) or {}
        decision, reason = story(version, registry.read_verdict(bucket, version), log)
        metrics = metadata.get("metrics", {})
        rows.append(
            (
                "★" if champion and champion.version == version else "",
                version,
                str(metadata.get("rows_used", "")),
                *(_fmt(metrics.get(key)) for key in ("micro_f1", "macro_f1", "top1_accuracy")),
                decision,
                reason,
            )
        )
    console_out = Console()  # the terminal's width (80 columns when not a terminal, or $COLUMNS)
    console_out.print(versions_table(f"gs://{bucket.name}/models/", rows))
    if champion is None:
        console_out.print("no champion yet")


def versions_table(title: str, rows: list[tuple[str, ...]]) -> Table:
    """The versions (rows of ★, version, rows, micro F1, macro F1, top-1, decision, reason) as a table that fits
    the console: the version and figures whole on one line, what happened and why below it wrapped, never cut."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("  version", no_wrap=True)
    for column in ("rows", "micro\nF1", "macro\nF1", "top-1"):
        table.add_column(column, no_wrap=True, justify="right")
    table.add_column("decision (why)", overflow="fold", min_width=16)
    for star, version, *figures, decision, reason in rows:
        told = Text(decision, style="bold")
        if reason:
            told.append(f"\n{reason}", style="italic")
        table.add_row(f"{star or ' '} {version}", *figures, told)
    return table


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
    _promote_by_hand(bucket, found.metadata, PROMOTED_BY_HAND)


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
    console.print(f"champion rolled back to {restored.version} (was {current.version})" + _PICKED_UP)


COMMANDS = (models,)
