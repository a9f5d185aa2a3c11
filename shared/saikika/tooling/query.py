"""`saikika query 'SQL'`: a documented BigQuery query, run locally with DuckDB over the predictions files.

The files are laid out as BigQuery's external tables see them (terraform/bigquery.tf): `predictions` reads
`predictions/**.jsonl` with the hive key `dt`, `batch_predictions` reads `batch/**.jsonl` with `dt` and `run`, and
`latest_predictions` is the view, defined by its own query. The SQL is translated from BigQuery's dialect by
sqlglot and the tables are matched by name (`PROJECT.saikika.predictions` or just `predictions`), so an analyst can
try a query on a folder, a bucket or the local stack before paying for it in BigQuery. Not checked here: BigQuery's
required partition filter, and GoogleSQL validity itself (`make test` checks the documented queries with ZetaSQL).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import click

from saikika.core import objects

# The prediction record's fields (saikika.core.records.FIELDS) as DuckDB types: BigQuery's schema in
# terraform/bigquery.tf, which a unit test holds this to.
RECORD_COLUMNS = {
    "id": "VARCHAR",
    "labels": "VARCHAR[]",
    "scores": "JSON",
    "model_version": "VARCHAR",
    "predicted_at": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class ExternalTable:
    """One BigQuery external table over the predictions bucket: where its files are and how they partition."""

    prefix: str
    traces: tuple[str, ...]
    hive_keys: dict[str, str]

    def columns(self) -> dict[str, str]:
        return {**RECORD_COLUMNS, **dict.fromkeys(self.traces, "VARCHAR")}


TABLES = {
    # The event path's `predictions/dt=DAY/<message id>.jsonl` (saikika.core.objects.predictions) and the online
    # path's sampled requests beside them (objects.http_predictions).
    "predictions": ExternalTable("predictions/", ("message_id", "request_id"), {"dt": "DATE"}),
    "batch_predictions": ExternalTable(objects.BATCH_OUTPUT_PREFIX, ("run_id",), {"dt": "DATE", "run": "VARCHAR"}),
}
# The view latest_predictions, in BigQuery's dialect, as terraform deploys it with the default 90-day window
# (a unit test compares it with terraform's). `{dataset}` is filled with the dataset the query names.
LATEST_PREDICTIONS_DAYS = 90
LATEST_PREDICTIONS = """
SELECT * EXCEPT (newest)
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY predicted_at DESC, source DESC) AS newest
  FROM (
    SELECT id, labels, scores, model_version, predicted_at, dt,
      IF(request_id IS NULL, 'event', 'http') AS path, COALESCE(message_id, request_id) AS source
    FROM `{dataset}.predictions`
    WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL {days} DAY)
    UNION ALL
    SELECT id, labels, scores, model_version, predicted_at, dt, 'batch' AS path, run_id AS source
    FROM `{dataset}.batch_predictions`
    WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL {days} DAY)
  )
)
WHERE newest = 1
"""


class QueryError(click.ClickException):
    """A query that cannot run locally; the message says why and what to do."""


def latest_predictions_sql(dataset: str = "PROJECT.saikika", days: int = LATEST_PREDICTIONS_DAYS) -> str:
    return LATEST_PREDICTIONS.format(dataset=dataset, days=days).strip()


VIEWS = {"latest_predictions": latest_predictions_sql()}


def _require_extra() -> None:
    try:
        import duckdb  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError as exc:
        raise QueryError(
            f"`saikika query` needs the query extra ({exc.name} is missing): pip install -e '.[query]'"
        ) from None


def _parse(sql: str):
    _require_extra()
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except ParseError as exc:
        raise QueryError(f"not a query sqlglot can read as BigQuery SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def tables_named(sql: str) -> set[str]:
    """The external tables and views a query reads (`PROJECT.DATASET.NAME`, `DATASET.NAME` or `NAME`)."""
    from sqlglot import exp

    tree = _parse(sql)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    named = set()
    for table in tree.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        if table.name not in TABLES and table.name not in VIEWS:
            known = ", ".join(sorted([*TABLES, *VIEWS]))
            raise QueryError(f"no table {table.sql(dialect='bigquery')} here: the local tables are {known}")
        named.add(table.name)
    return named


def files_needed(sql: str) -> set[str]:
    """The external tables whose files a query reads, a view's through its own query."""
    named = tables_named(sql)
    return {t for t in named if t in TABLES} | {t for v in named & set(VIEWS) for t in tables_named(VIEWS[v])}


def to_duckdb(sql: str) -> str:
    """BigQuery SQL as DuckDB runs it over the views `open_database` defines: dialect by sqlglot, tables by name."""
    from sqlglot import exp

    tree = _parse(sql)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def rename(node):
        if isinstance(node, exp.Table) and (node.db or node.name not in ctes):
            return exp.table_(node.name, alias=node.alias or None)
        return node

    return tree.transform(rename).sql(dialect="duckdb")


def _empty(columns: dict[str, str]) -> str:
    return "SELECT " + ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns.items()) + " WHERE false"


def open_database(root: Path):
    """An in-memory DuckDB with the tables and views over the predictions under `root`, laid out as in the bucket."""
    import duckdb

    database = duckdb.connect()
    database.execute("SET TimeZone = 'UTC'")
    for name, table in TABLES.items():
        folder = root / table.prefix
        if any(folder.glob("**/*.jsonl")):
            # The `.jsonl` glob is the external table's source URI: `_SUCCESS` and `_RUN.json` are never read.
            source = (
                f"SELECT * FROM read_json({_literal(str(folder / '**' / '*.jsonl'))}, format = 'newline_delimited', "
                f"columns = {_struct(table.columns())}, hive_partitioning = true, "
                f"hive_types = {_struct(table.hive_keys)})"
            )
        else:
            source = _empty({**table.columns(), **table.hive_keys})
        database.execute(f"CREATE VIEW {name} AS {source}")
    for name, sql in VIEWS.items():
        database.execute(f"CREATE VIEW {name} AS {to_duckdb(sql)}")
    return database


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _struct(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in mapping.items()) + "}"


def run(sql: str, root: Path) -> tuple[list[str], list[dict]]:
    """(column names, rows as JSON-ready dicts) of a BigQuery query over the predictions under `root`."""
    import duckdb

    tables_named(sql)  # an unknown table is named as the query wrote it, not as DuckDB's catalog error
    database = open_database(root)
    try:
        cursor = database.execute(to_duckdb(sql))
    except duckdb.Error as exc:
        raise QueryError(f"DuckDB could not run the translated query: {str(exc).splitlines()[0]}") from None
    columns = [d[0] for d in cursor.description]
    json_columns = {d[0] for d in cursor.description if str(d[1]) == "JSON"}
    rows = [
        {c: _json_ready(v, c in json_columns) for c, v in zip(columns, row)}
        for row in cursor.fetchall()  # a documented query's answer is small; a large one is BigQuery's job
    ]
    return columns, rows


def _json_ready(value, is_json: bool):
    if is_json and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_ready(v, False) for v in value]
    return value


# ---- where the files come from --------------------------------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))


def download(bucket_name: str, prefixes: set[str], into: Path, project: str) -> int:
    """Copy the `.jsonl` objects under `prefixes` of a bucket into `into`, keeping their names. Returns how many."""
    import requests
    from google.api_core import exceptions as gexc

    from saikika.cloud import gcs

    client = gcs.client(project)
    # A few seconds, not the library's two minutes of retries: a person is waiting, and a stopped stack will not
    # come back by itself.
    patience = gcs.SERVING
    copied = 0
    try:
        for prefix in sorted(prefixes):
            blobs = client.list_blobs(bucket_name, prefix=prefix, timeout=patience.timeout, retry=patience.retry)
            for blob in blobs:
                if blob.name.endswith(".jsonl"):
                    target = into / blob.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    blob.download_to_filename(str(target), timeout=patience.timeout, retry=patience.retry)
                    copied += 1
    except gexc.NotFound:
        raise QueryError(f"no bucket gs://{bucket_name}: check --predictions or SAIKIKA_PREDICTIONS_BUCKET") from None
    except (requests.ConnectionError, gexc.RetryError, *gcs.TRANSIENT_ERRORS) as exc:
        where = os.environ.get("STORAGE_EMULATOR_HOST", "storage.googleapis.com")
        raise QueryError(
            f"cannot reach Cloud Storage at {where} ({type(exc).__name__}): is `saikika local up` running?"
        ) from None
    return copied


def _bucket_source(predictions: str | None, state_dir: Path) -> tuple[str, str]:
    """(bucket, project) of a gs:// source, or of the settings: the environment's, else the local stack's file."""
    if predictions:
        bucket = predictions[len("gs://") :].strip("/")
        if "/" in bucket:
            raise QueryError(
                f"--predictions {predictions}: give the bucket (gs://BUCKET), the tables' folders are fixed"
            )
        return bucket, os.environ.get("GOOGLE_CLOUD_PROJECT", "local")
    env_file = state_dir / "local.env"
    if not os.environ.get("SAIKIKA_PREDICTIONS_BUCKET") and env_file.is_file():
        for key, value in read_env_file(env_file).items():
            os.environ.setdefault(key, value)  # this process's own environment: the client reads the emulator host
    bucket = os.environ.get("SAIKIKA_PREDICTIONS_BUCKET")
    if not bucket:
        raise QueryError(
            f"no predictions to query: give --predictions FOLDER or gs://BUCKET, or start the local stack "
            f"(`saikika local up`, which writes {env_file})"
        )
    return bucket, os.environ.get("GOOGLE_CLOUD_PROJECT", "local")


def _print(columns: list[str], rows: list[dict], output_format: str) -> None:
    if output_format == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in row.values()))
    console = Console()
    console.print(table)
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", style="dim")


@click.command("query")
@click.argument("sql")
@click.option(
    "--predictions",
    help="A folder holding predictions/ and batch/ as in the bucket, or gs://BUCKET. Default: the local stack's "
    "predictions bucket (SAIKIKA_PREDICTIONS_BUCKET, else .saikika/local.env).",
)
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def query_command(sql: str, predictions: str | None, state_dir: Path, output_format: str) -> None:
    """Run a BigQuery query on the predictions locally (DuckDB): tables predictions, batch_predictions and the
    view latest_predictions, as PROJECT.saikika.NAME or NAME."""
    if predictions and not predictions.startswith("gs://"):
        root = Path(predictions)
        if not root.is_dir():
            raise QueryError(f"--predictions {predictions}: no such folder (or give gs://BUCKET)")
        columns, rows = run(sql, root)
    else:
        bucket, project = _bucket_source(predictions, state_dir)
        prefixes = {TABLES[name].prefix for name in files_needed(sql)}
        with tempfile.TemporaryDirectory(prefix="saikika-query-") as folder:
            download(bucket, prefixes, Path(folder), project)
            columns, rows = run(sql, Path(folder))
    _print(columns, rows, output_format)
