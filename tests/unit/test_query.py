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
    assert set(deployed) == set(query.VIEWS) == {"latest_predictions", "served_quality"}
    for name, sql in query.VIEWS.items():
        assert _flat(sql) == _flat(deployed[name]), name


def test_the_tables_prefixes_are_where_the_code_writes():
    from datetime import UTC, datetime

    assert objects.predictions(datetime.now(UTC), "1").startswith(query.TABLES["predictions"].prefix)
    assert objects.batch_run_folder(datetime.now(UTC), "r").startswith(query.TABLES["batch_predictions"].prefix)
    assert objects.feedback(datetime.now(UTC), "1").startswith(query.TABLES["feedback"].prefix)
    shard = objects.compacted_shard("2026-12-06", datetime.now(UTC), "ab" * 32)
    assert shard.startswith(query.TABLES["feedback_compacted"].prefix) and shard.endswith(".jsonl")
    assert not objects.COMPACTION_MANIFEST.endswith(".jsonl")  # the manifest is never read as feedback


@pytest.mark.parametrize("name", ["`PROJECT.saikika.predictions`", "`other-project.ds.predictions`", "predictions"])
def test_a_table_is_known_by_its_own_name(name):
    assert query.tables_named(f"SELECT id FROM {name}") == {"predictions"}
    assert query.to_duckdb(f"SELECT id FROM {name}") == "SELECT id FROM predictions"


def test_ctes_keep_their_names_and_the_view_needs_both_tables():
    sql = "WITH p AS (SELECT id FROM `PROJECT.saikika.batch_predictions`) SELECT * FROM p"
    assert query.tables_named(sql) == {"batch_predictions"}
    assert query.files_needed("SELECT * FROM `PROJECT.saikika.latest_predictions`") == {
        "predictions",
        "batch_predictions",
    }
    assert query.files_needed("SELECT * FROM served_quality") == {"predictions", "feedback", "feedback_compacted"}


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


# ---- served quality: feedback joined with what was served -------------------------------------------------------
def _write_jsonl(root, name: str, lines: list[dict]) -> None:
    from saikika.core import jsonl

    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(jsonl.dumps(lines), encoding="utf-8")


def test_the_documented_served_quality_query_counts_what_the_files_hold(tmp_path):
    """Predictions (event path and online path) and feedback rows written by the functions' own record builders,
    laid out as in the buckets: feedback loose, folded into a compacted shard, and one folded object not yet
    deleted (in both places, counted once). Feedback that came before any prediction of its item is not judged, and
    a prediction made after the feedback does not count for it."""
    from datetime import UTC, datetime, timedelta

    from saikika.core.events import PubSubMessage
    from saikika.core.items import Item
    from saikika.handlers.feedback import feedback_records
    from saikika.handlers.predict_http import log_records

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    root = tmp_path / "buckets"
    predictions = []

    def served(when: datetime, message_id: str, version: str, labels: dict[str, list[str]]) -> None:
        lines = [
            records.prediction(
                item, found, {label: 0.9 for label in found}, version, when.isoformat(), message_id=message_id
            )
            for item, found in labels.items()
        ]
        _write_jsonl(root, objects.predictions(when, message_id), lines)
        predictions.extend(lines)

    served(start, "101", "v1", {"a": ["kids"], "b": ["news", "sports"], "c": []})
    served(start + timedelta(hours=1), "102", "v2", {"a": ["kids", "sports"]})
    online = log_records([{"id": "d", "labels": ["news"], "scores": {"news": 0.8}}], "v2", "req-1")
    _write_jsonl(root, objects.http_predictions(start + timedelta(hours=1), "w1", 0), online)
    predictions.extend(online)
    served(start + timedelta(hours=5), "103", "v3", {"b": ["sports"]})  # after the feedback on b: not what was served

    feedback = []

    def confirmed(when: datetime, message_id: str, labels: dict[str, list[str]], *places: str) -> None:
        message = PubSubMessage(message_id, b"", when)
        rows = feedback_records([Item(i, title=i, labels=tuple(ls)) for i, ls in labels.items()], message, when)
        for place in places:
            name = objects.feedback(when, message_id)
            if place == "compacted":
                name = objects.compacted_shard(f"{when:%Y-%m-%d}", when + timedelta(minutes=5), message_id * 8)
            _write_jsonl(root, name, rows)
        feedback.extend(rows)

    confirmed(start - timedelta(hours=1), "900", {"a": ["kids"]}, "loose")  # before any prediction of a
    confirmed(start + timedelta(minutes=30), "901", {"a": ["kids"], "b": ["news"]}, "compacted")
    confirmed(start + timedelta(hours=2), "902", {"a": ["kids", "sports"], "c": ["toys"]}, "loose", "compacted")
    confirmed(start + timedelta(hours=3), "903", {"b": ["news", "sports"]}, "loose")
    # The online path's request log stamps its lines with the time of writing: feedback on d comes after.
    confirmed(datetime.now(UTC) + timedelta(seconds=1), "904", {"d": ["sports"]}, "loose")

    sql = googlesql_documented("served_quality")
    columns, rows = query.run(sql, root)
    assert googlesql.served_quality_agrees(rows, googlesql.served_quality_by_hand(predictions, feedback))
    assert columns == [
        "model_version",
        "label",
        "feedback_rows",
        "true_positives",
        "false_positives",
        "false_negatives",
        "precision",
        "recall",
    ]
    # The answer is not trivial: both versions served, the duplicate counted once, b judged by v1 (not v3).
    assert {r["model_version"] for r in rows} == {"v1", "v2"}
    by_key = {(r["model_version"], r["label"]): r for r in rows}
    assert by_key[("v2", "kids")]["feedback_rows"] == 2  # a (event path) and d (online path)
    assert (by_key[("v2", "news")]["false_positives"], by_key[("v2", "sports")]["false_negatives"]) == (1, 1)
    assert by_key[("v1", "kids")]["true_positives"] == 1  # a's first feedback: 900 came before any prediction
    assert by_key[("v1", "toys")]["false_negatives"] == 1 and by_key[("v1", "toys")]["precision"] is None
    assert by_key[("v1", "news")]["true_positives"] == 2  # b twice (901, 903), judged by v1, never by v3


def googlesql_documented(fragment: str) -> str:
    [statement] = [
        s.sql for s in googlesql.documented_statements() if fragment in s.sql and "bigquery.md" in str(s.path)
    ]
    return statement
