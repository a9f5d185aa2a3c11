"""Every SQL statement in the docs and in terraform is valid GoogleSQL, as BigQuery's own front end (ZetaSQL)
analyses it against the dataset terraform deploys: a query that would fail in BigQuery fails here first, with
the file and line it is written at."""

from __future__ import annotations

import pytest

from tests import googlesql, terraform_hcl


@pytest.fixture(scope="module")
def front_end() -> googlesql.GoogleSQL:
    return googlesql.GoogleSQL(terraform_hcl.load())


def test_every_documented_and_deployed_statement_is_valid_googlesql(front_end):
    statements = googlesql.documented_statements() + googlesql.terraform_statements()
    assert len(googlesql.documented_statements()) >= 3 and googlesql.terraform_statements()
    failures = []
    for statement in statements:
        try:
            front_end.analyze(statement.sql)
        except Exception as exc:  # noqa: BLE001 - zetasql raises one ServerError for every kind of invalid SQL
            failures.append(f"{statement.where(str(exc))}: {exc}")
    assert not failures, "\n".join(failures)


def test_the_catalog_holds_the_tables_and_the_view_the_docs_name(front_end):
    assert front_end.table_names() == [
        "PROJECT.saikika.batch_predictions",
        "PROJECT.saikika.feedback",
        "PROJECT.saikika.feedback_compacted",
        "PROJECT.saikika.latest_predictions",
        "PROJECT.saikika.predictions",
        "PROJECT.saikika.served_quality",
    ]
    columns = {
        c.name: c.column.type
        for c in front_end.analyze("SELECT * FROM `PROJECT.saikika.batch_predictions`").output_column_list
    }
    assert list(columns)[-2:] == ["dt", "run"]  # the hive partition keys, as the external table exposes them
    quality = front_end.analyze("SELECT * FROM `PROJECT.saikika.served_quality`").output_column_list
    assert [c.name for c in quality] == [
        "model_version",
        "label",
        "feedback_rows",
        "true_positives",
        "false_positives",
        "false_negatives",
        "precision",
        "recall",
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "WITH new AS (SELECT 1 AS x) SELECT * FROM new",  # NEW is reserved: the README's third query once did this
        "SELECT 1 AS rows",  # ROWS is reserved; sqlglot and DuckDB accept both
        "SELECT nope FROM `PROJECT.saikika.predictions`",  # no such column
        "SELECT id FROM `PROJECT.saikika.nothing`",  # no such table
    ],
)
def test_the_front_end_rejects_what_bigquery_rejects(front_end, sql):
    with pytest.raises(Exception, match="INVALID_ARGUMENT"):
        front_end.analyze(sql)


def test_a_failure_points_at_the_line_of_the_error_in_its_file():
    statement = googlesql.Statement(googlesql.ROOT / "README.md", 10, "SELECT 1\nFROM x\nWHERE")
    assert statement.where("Syntax error: Unexpected end of statement [at 3:6]") == "README.md:12"
    assert statement.where("no position") == "README.md:10"


def test_every_sql_block_is_found_with_its_line():
    readme = next(s for s in googlesql.documented_statements() if "UNNEST(labels) AS label" in s.sql)
    lines = readme.path.read_text(encoding="utf-8").splitlines()
    assert lines[readme.line - 2] == "```sql" and lines[readme.line - 1] == readme.sql.splitlines()[0]
    latest, served = googlesql.terraform_statements()
    assert "`PROJECT.saikika.predictions`" in latest.sql and "${" not in latest.sql
    assert latest.sql == googlesql.views(terraform_hcl.load())["latest_predictions"]
    assert "`PROJECT.saikika.feedback_compacted`" in served.sql and "INTERVAL 90 DAY" in served.sql
    assert served.sql == googlesql.views(terraform_hcl.load())["served_quality"]
