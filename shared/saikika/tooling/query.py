"""`saikika query 'SQL'`: a documented BigQuery query, run locally with DuckDB over the predictions and feedback files.

The files are laid out as BigQuery's external tables see them (terraform/bigquery.tf): `predictions` reads
`predictions/**.jsonl` with the hive key `dt`, `batch_predictions` reads `batch/**.jsonl` with `dt` and `run` (the
predictions bucket); `feedback` reads `training/feedback/**.jsonl` and `feedback_compacted` `compacted/**.jsonl`,
both with `dt` (the data bucket); `latest_predictions` and `served_quality` are the views, defined by their own
queries. The SQL is translated from BigQuery's dialect by
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
from saikika.tooling.local_stack import ENV_FILE, use_env_file

# The prediction record's fields (saikika.core.records.FIELDS) as DuckDB types: BigQuery's schema in
# terraform/bigquery.tf, which a unit test holds this to.
RECORD_COLUMNS = {
    "id": "VARCHAR",
    "labels": "VARCHAR[]",
    "scores": "JSON",
    "model_version": "VARCHAR",
    "predicted_at": "TIMESTAMPTZ",
}


# A feedback row (saikika.handlers.feedback.feedback_records) as DuckDB types: terraform's feedback_fields.
FEEDBACK_COLUMNS = {
    "id": "VARCHAR",
    "title": "VARCHAR",
    "description": "VARCHAR",
    "tags": "VARCHAR[]",
    "labels": "VARCHAR[]",
    "event_time": "TIMESTAMPTZ",
    "message_id": "VARCHAR",
    "received_at": "TIMESTAMPTZ",
    "source": "VARCHAR",
}
PREDICTIONS, DATA = "predictions", "data"  # the bucket a table's objects are in


@dataclass(frozen=True)
class ExternalTable:
    """One BigQuery external table over a bucket: which bucket, where its files are and how they partition."""

    bucket: str
    prefix: str
    fields: tuple[tuple[str, str], ...]
    hive_keys: dict[str, str]

    def columns(self) -> dict[str, str]:
        return dict(self.fields)


def _predictions_table(prefix: str, traces: tuple[str, ...], hive_keys: dict[str, str]) -> ExternalTable:
    fields = (*RECORD_COLUMNS.items(), *((trace, "VARCHAR") for trace in traces))
    return ExternalTable(PREDICTIONS, prefix, fields, hive_keys)


TABLES = {
    # The event path's `predictions/dt=DAY/<message id>.jsonl` (saikika.core.objects.predictions) and the online
    # path's sampled requests beside them (objects.http_predictions).
    "predictions": _predictions_table("predictions/", ("message_id", "request_id"), {"dt": "DATE"}),
    "batch_predictions": _predictions_table(objects.BATCH_OUTPUT_PREFIX, ("run_id",), {"dt": "DATE", "run": "VARCHAR"}),
    # Feedback, loose (objects.feedback) and folded by retrain runs into daily shards (objects.compacted_shard).
    "feedback": ExternalTable(DATA, objects.FEEDBACK_FOLDER, tuple(FEEDBACK_COLUMNS.items()), {"dt": "DATE"}),
    "feedback_compacted": ExternalTable(
        DATA, objects.COMPACTED_PREFIX, tuple(FEEDBACK_COLUMNS.items()), {"dt": "DATE"}
    ),
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


# The view served_quality, as terraform deploys it with the default 90-day window (a unit test compares them).
SERVED_QUALITY_DAYS = 90
SERVED_QUALITY = """
WITH feedback_rows AS (
  SELECT id, labels, event_time, message_id,
    ROW_NUMBER() OVER (PARTITION BY message_id, id ORDER BY received_at) AS copy
  FROM (
    SELECT id, labels, event_time, message_id, received_at
    FROM `{dataset}.feedback`
    WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL {days} DAY)
    UNION ALL
    SELECT id, labels, event_time, message_id, received_at
    FROM `{dataset}.feedback_compacted`
    WHERE dt >= DATE_SUB(CURRENT_DATE(), INTERVAL {days} DAY)
  )
),
judged AS (
  SELECT feedback_row.message_id, feedback_row.id, feedback_row.labels AS confirmed,
    served.labels AS predicted, served.model_version,
    ROW_NUMBER() OVER (
      PARTITION BY feedback_row.message_id, feedback_row.id
      ORDER BY served.predicted_at DESC, COALESCE(served.message_id, served.request_id) DESC
    ) AS newest
  FROM feedback_rows AS feedback_row
  JOIN `{dataset}.predictions` AS served
    ON served.id = feedback_row.id AND served.predicted_at <= feedback_row.event_time
  WHERE feedback_row.copy = 1
    AND served.dt >= DATE_SUB(CURRENT_DATE(), INTERVAL {days} DAY)
),
label_rows AS (
  SELECT model_version, message_id, id, label,
    LOGICAL_OR(is_confirmed) AS confirmed, LOGICAL_OR(is_predicted) AS predicted
  FROM (
    SELECT model_version, message_id, id, label, TRUE AS is_confirmed, FALSE AS is_predicted
    FROM judged, UNNEST(confirmed) AS label
    WHERE newest = 1
    UNION ALL
    SELECT model_version, message_id, id, label, FALSE AS is_confirmed, TRUE AS is_predicted
    FROM judged, UNNEST(predicted) AS label
    WHERE newest = 1
  )
  GROUP BY model_version, message_id, id, label
),
versions AS (
  SELECT model_version, COUNT(*) AS feedback_rows FROM judged WHERE newest = 1 GROUP BY model_version
)
SELECT label_rows.model_version, label, versions.feedback_rows,
  COUNTIF(confirmed AND predicted) AS true_positives,
  COUNTIF(predicted AND NOT confirmed) AS false_positives,
  COUNTIF(confirmed AND NOT predicted) AS false_negatives,
  SAFE_DIVIDE(COUNTIF(confirmed AND predicted), COUNTIF(predicted)) AS precision,
  SAFE_DIVIDE(COUNTIF(confirmed AND predicted), COUNTIF(confirmed)) AS recall
FROM label_rows
JOIN versions ON versions.model_version = label_rows.model_version
GROUP BY label_rows.model_version, label, versions.feedback_rows
"""


class QueryError(click.ClickException):
    """A query that cannot run locally; the message says why and what to do."""


def latest_predictions_sql(dataset: str = "PROJECT.saikika", days: int = LATEST_PREDICTIONS_DAYS) -> str:
    return LATEST_PREDICTIONS.format(dataset=dataset, days=days).strip()


def served_quality_sql(dataset: str = "PROJECT.saikika", days: int = SERVED_QUALITY_DAYS) -> str:
    return SERVED_QUALITY.format(dataset=dataset, days=days).strip()


VIEWS = {"latest_predictions": latest_predictions_sql(), "served_quality": served_quality_sql()}


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


def open_database(root: Path, data_root: Path | None = None):
    """An in-memory DuckDB with the tables and views over the predictions under `root` and the feedback under
    `data_root` (default: `root` too; the two buckets' prefixes never collide), laid out as in the buckets."""
    import duckdb

    database = duckdb.connect()
    database.execute("SET TimeZone = 'UTC'")
    roots = {PREDICTIONS: root, DATA: data_root or root}
    for name, table in TABLES.items():
        folder = roots[table.bucket] / table.prefix
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


def run(sql: str, root: Path, data_root: Path | None = None) -> tuple[list[str], list[dict]]:
    """(column names, rows as JSON-ready dicts) of a BigQuery query over the predictions under `root` and the
    feedback under `data_root` (default `root`)."""
    import duckdb

    tables_named(sql)  # an unknown table is named as the query wrote it, not as DuckDB's catalog error
    database = open_database(root, data_root)
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
def download(bucket_name: str, prefixes: set[str], into: Path, project: str, role: str = PREDICTIONS) -> int:
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
        option, variable = _SOURCES[role]
        raise QueryError(f"no bucket gs://{bucket_name}: check {option} or {variable}") from None
    except (requests.ConnectionError, gexc.RetryError, *gcs.TRANSIENT_ERRORS) as exc:
        # Told in one line by the command line (cli.mistakes), as every command's unreachable storage is.
        raise gcs.StorageUnreachable(f"cannot reach Cloud Storage at {gcs.endpoint()}") from exc
    return copied


# Where each bucket's objects come from: the command's option and the setting naming the bucket.
_SOURCES = {PREDICTIONS: ("--predictions", "SAIKIKA_PREDICTIONS_BUCKET"), DATA: ("--data", "SAIKIKA_DATA_BUCKET")}


def _bucket_source(given: str | None, role: str, state_dir: Path) -> tuple[str, str]:
    """(bucket, project) of a gs:// source, or of the settings: the environment's, else the local stack's file."""
    option, variable = _SOURCES[role]
    if given:
        bucket = given[len("gs://") :].strip("/")
        if "/" in bucket:
            raise QueryError(f"{option} {given}: give the bucket (gs://BUCKET), the tables' folders are fixed")
        return bucket, os.environ.get("GOOGLE_CLOUD_PROJECT", "local")
    env_file = state_dir / ENV_FILE
    use_env_file(env_file, unless_set=variable)
    bucket = os.environ.get(variable)
    if not bucket:
        raise QueryError(
            f"no {role} to query: give {option} FOLDER or gs://BUCKET, or start the local stack "
            f"(`saikika local up`, which writes {env_file})"
        )
    return bucket, os.environ.get("GOOGLE_CLOUD_PROJECT", "local")


def _roots(sql: str, sources: dict[str, str | None], state_dir: Path, scratch: Path) -> dict[str, Path]:
    """Each bucket's folder: a given folder, or what the query reads downloaded from its bucket into `scratch`.
    A folder given for the predictions serves the feedback too unless --data says otherwise (the two buckets'
    prefixes never collide)."""
    needed = files_needed(sql)
    roots: dict[str, Path] = {}
    for role, given in sources.items():
        option = _SOURCES[role][0]
        if role == DATA and given is None and PREDICTIONS in roots and roots[PREDICTIONS] != scratch / PREDICTIONS:
            roots[role] = roots[PREDICTIONS]
        elif given and not given.startswith("gs://"):
            roots[role] = Path(given)
            if not roots[role].is_dir():
                raise QueryError(f"{option} {given}: no such folder (or give gs://BUCKET)")
        else:
            roots[role] = scratch / role
            prefixes = {TABLES[name].prefix for name in needed if TABLES[name].bucket == role}
            if prefixes:
                bucket, project = _bucket_source(given, role, state_dir)
                download(bucket, prefixes, roots[role], project, role)
    return roots


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
@click.option(
    "--data",
    help="A folder holding training/feedback/ and compacted/ as in the data bucket, or gs://BUCKET. Default: the "
    "--predictions folder if one is given, else the local stack's data bucket (SAIKIKA_DATA_BUCKET).",
)
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def query_command(sql: str, predictions: str | None, data: str | None, state_dir: Path, output_format: str) -> None:
    """Run a BigQuery query on the predictions and feedback locally (DuckDB): tables predictions, batch_predictions,
    feedback, feedback_compacted and the views latest_predictions and served_quality, as PROJECT.saikika.NAME or
    NAME."""
    with tempfile.TemporaryDirectory(prefix="saikika-query-") as folder:
        roots = _roots(sql, {PREDICTIONS: predictions, DATA: data}, state_dir, Path(folder))
        columns, rows = run(sql, roots[PREDICTIONS], roots[DATA])
    _print(columns, rows, output_format)
