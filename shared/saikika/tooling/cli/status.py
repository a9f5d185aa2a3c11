"""`saikika status`: the loop's health as the retrain tick last wrote it (`monitoring/health.json`), as a table or
as JSON, with an exit code scripts can test."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from saikika.core.drift import too_few_items
from saikika.tooling.cli.common import _models_bucket

# Exit codes by status (docs/cli.md): 1 and 2 are click's (an error, a usage mistake).
EXIT_CODES = {"ok": 0, "degraded": 3, "no-champion": 3, "stalled": 4}
# A health older than this was not rewritten by the last ticks (one a minute).
STALE_AFTER_S = 600.0
_STYLES = {"ok": "green", "degraded": "yellow", "no-champion": "yellow", "stalled": "bold red"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print monitoring/health.json as it is.")
def status(as_json: bool) -> None:
    """The loop's health (gs://$SAIKIKA_MODELS_BUCKET/monitoring/health.json, rewritten by every retrain tick).

    Exit code: 0 ok, 3 degraded or no champion, 4 stalled."""
    from saikika.cloud import gcs
    from saikika.core import objects

    bucket = _models_bucket()
    found = gcs.read_json(bucket, objects.HEALTH_OBJECT)
    if found is None:
        raise click.ClickException(
            f"no loop health yet (gs://{bucket.name}/{objects.HEALTH_OBJECT}): the retrain tick writes it every "
            "minute, so try again in a minute; if it stays absent, check the tick (locally `saikika local up` sends "
            "it; in the cloud the retrain_tick scheduler job)"
        )
    health = found[0]
    if as_json:
        click.echo(json.dumps(health, ensure_ascii=False, indent=2))
    else:
        Console().print(health_table(health, f"gs://{bucket.name}/{objects.HEALTH_OBJECT}"))
    sys.exit(EXIT_CODES.get(health.get("status"), 1))


def health_table(health: dict, where: str) -> Table:
    table = Table(title=where, show_header=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("")
    status = str(health.get("status"))
    for name, value in [("status", f"[{_STYLES.get(status, '')}]{status}[/]"), *_rows(health)]:
        table.add_row(name, value)
    return table


def _rows(health: dict) -> list[tuple[str, str]]:
    champion, run, pending = health.get("champion"), health.get("last_run"), health.get("pending") or {}
    quality, drift = health.get("last_live_quality"), health.get("drift")
    return [
        *(("problem", f"[red]{problem}[/]") for problem in health.get("problems", [])),
        ("checked", _when(health.get("checked_at")) + _stale(health.get("checked_at"))),
        ("champion", f"{champion['version']}, promoted {_when(champion.get('since'))}" if champion else "none"),
        ("offline micro F1", _number(champion and champion.get("offline_micro_f1"))),
        ("last run", f"{run['status']} {_when(run.get('started_at'))}: {run.get('reason', '')}" if run else "none yet"),
        ("last successful run", _when(health.get("last_successful_run_at")) or "none counted"),
        ("pending", f"{pending.get('count', 0)}" + _oldest(pending.get("oldest_age_s"))),
        ("failed runs in a row", str(health.get("consecutive_failed_runs", 0))),
        ("rejected candidates in a row", str(health.get("consecutive_rejected_candidates", 0))),
        ("live micro F1", _quality(quality) if quality else "none yet"),
        ("label drift", _drift(drift) if drift else "none today"),
        ("rejected inputs today", str(health.get("rejected_inputs_today", 0))),
    ]


def _quality(quality: dict) -> str:
    degraded = " [yellow]degraded[/]" if quality.get("degraded") else ""
    return (
        f"{_number(quality.get('micro_f1'))} on {quality.get('rows')} rows of {quality.get('champion_version')} "
        f"(offline {_number(quality.get('offline_micro_f1'))}){degraded}"
    )


def _drift(drift: dict) -> str:
    above = " [yellow]above its bound[/]" if drift.get("above_bound") else ""
    few = f", too few items to judge: {drift.get('items')} < {drift.get('min_items')}" if too_few_items(drift) else ""
    return f"{_number(drift.get('divergence'))} on {drift.get('day')} (bound {drift.get('bound')}{few}){above}"


def _stale(iso: str | None) -> str:
    """The tick rewrites the health every minute: an old one means the tick (or its monitoring step) stopped."""
    age = _age_s(iso)
    return "" if age is None or age < STALE_AFTER_S else " [red]old: is the retrain tick running?[/]"


def _oldest(age_s: float | None) -> str:
    return "" if age_s is None else f", the oldest waiting {_duration(age_s)}"


def _when(iso: str | None) -> str:
    ago = _age_s(iso)
    return (iso or "") if ago is None else f"{iso} ({_duration(ago)} ago)"


def _age_s(iso: str | None) -> float | None:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds() if iso else None
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _number(value) -> str:
    return "—" if value is None else f"{value:.4f}"


COMMANDS = (status,)
