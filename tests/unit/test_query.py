"""`saikika query` on a folder: the tables are terraform's (columns, partition keys, the view's own query), names
map whatever project or dataset a query writes, and what cannot run says so in one line."""

from __future__ import annotations

import json
import re
import socket

import pytest
from click.testing import CliRunner

from saikika.cloud import batch_pipeline
from saikika.core import jsonl, objects, records
from saikika.model import artifact, catalogue
from saikika.tooling import query
from saikika.tooling.cli import main
from tests import googlesql, terraform_hcl

# BigQuery's schema types as the local tables must read them.
DUCKDB_TYPES = {"STRING": "VARCHAR", "JSON": "JSON", "TIMESTAMP": "TIMESTAMPTZ", "DATE": "DATE"}


def _flat(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def test_the_local_tables_are_terraforms_external_tables():
    tables = googlesql.external_tables(terraform_hcl.load())
    assert set(tables) == set(query.TABLES)
    assert tuple(query.RECORD_COLUMNS) == records.FIELDS
    for name, table in query.TABLES.items():
        declared = {c.name: DUCKDB_TYPES[c.type] + ("[]" if c.repeated else "") for c in tables[name]}
        assert {**table.columns(), **table.hive_keys} == declared, name


def test_the_view_is_the_one_terraform_deploys():
    deployed = googlesql.views(terraform_hcl.load())
    assert set(deployed) == set(query.VIEWS)
    assert _flat(query.VIEWS["latest_predictions"]) == _flat(deployed["latest_predictions"])


def test_the_tables_prefixes_are_where_the_code_writes():
    from datetime import UTC, datetime

    assert objects.predictions(datetime.now(UTC), "1").startswith(query.TABLES["predictions"].prefix)
    assert objects.batch_run_folder(datetime.now(UTC), "r").startswith(query.TABLES["batch_predictions"].prefix)


@pytest.mark.parametrize("name", ["`PROJECT.saikika.predictions`", "`other-project.ds.predictions`", "predictions"])
def test_a_table_is_known_by_its_own_name(name):
    assert query.tables_named(f"SELECT id FROM {name}") == {"predictions"}
    assert query.to_duckdb(f"SELECT id FROM {name}") == "SELECT id FROM predictions"


def test_ctes_keep_their_names_and_the_view_needs_both_tables():
    sql = "WITH p AS (SELECT id FROM `PROJECT.saikika.batch_predictions`) SELECT * FROM p"
    assert query.tables_named(sql) == {"batch_predictions"}
    assert query.files_needed("SELECT * FROM `PROJECT.saikika.latest_predictions`") == set(query.TABLES)


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT id FROM `PROJECT.saikika.nothing`", "no table `PROJECT.saikika.nothing` here"),
        ("SELECT 1; SELECT 2", "expected one SQL statement, got 2"),
        ("SELECT FROM WHERE (", "not a query"),
    ],
)
def test_a_query_that_cannot_run_gets_one_line(tmp_path, sql, message):
    result = CliRunner().invoke(main, ["query", sql, "--predictions", str(tmp_path)])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unreachable_bucket_is_one_line_after_a_few_seconds(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SAIKIKA_PREDICTIONS_BUCKET", "saikika-predictions")
    result = CliRunner().invoke(main, ["query", "SELECT id FROM predictions", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert f"cannot reach Cloud Storage at http://127.0.0.1:{port}" in result.output
    assert "is `saikika local up` running?" in result.output and "Traceback" not in result.output


def test_no_source_at_all_says_what_to_give(monkeypatch, tmp_path):
    monkeypatch.delenv("SAIKIKA_PREDICTIONS_BUCKET", raising=False)
    result = CliRunner().invoke(main, ["query", "SELECT id FROM predictions", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0 and "give --predictions FOLDER or gs://BUCKET" in result.output


def test_a_batch_run_folder_answers_as_its_files_say(tmp_path, model_files):
    """A Beam run's real output, put where batch runs write it: the partitions become columns, `_SUCCESS` is not
    read, and an empty event path is an empty table rather than an error."""
    items = list(catalogue.generate(30, seed=5))
    source = tmp_path / "catalogue.jsonl"
    source.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    artifact.write_dir(tmp_path / "model", model_files)
    root = tmp_path / "bucket"
    from datetime import UTC, datetime

    day = datetime.now(UTC)
    out = root / objects.batch_run_folder(day, "run-1")
    batch_pipeline.run(str(source), str(out), str(tmp_path / "model"), run_id="run-1")
    assert (out / objects.BATCH_SUCCESS_FILE).exists()
    lines = [json.loads(line) for part in out.glob("part-*.jsonl") for line in jsonl.lines(part.read_text())]

    sql = "SELECT run, dt, COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM `PROJECT.saikika.batch_predictions` GROUP BY run, dt"
    result = CliRunner().invoke(main, ["query", sql, "--predictions", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"run": "run-1", "dt": f"{day:%Y-%m-%d}", "n": len(lines), "ids": 30}]

    empty = CliRunner().invoke(main, ["query", "SELECT COUNT(*) AS n FROM predictions", "--predictions", str(root)])
    assert empty.exit_code == 0 and "0" in empty.output
    labelled = query.run("SELECT id, labels, scores FROM batch_predictions ORDER BY id", root)[1]
    assert labelled == sorted(
        ({k: line[k] for k in ("id", "labels", "scores")} for line in lines), key=lambda r: r["id"]
    )
