"""`saikika query` runs each query of docs/bigquery.md on predictions the product wrote itself, and each answer is
the one the files hold: items published to the local stack (the event path, `predictions/dt=DAY/...`) and two Beam
batch runs over one catalogue with two model versions, put where batch runs write them (`batch/dt=DAY/run=RUN/`)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from saikika.cloud import batch_pipeline
from saikika.core import jsonl, objects
from saikika.model import artifact, catalogue, training
from tests import googlesql
from tests.integration.helpers import publish, saikika_cli, today, wait_for_prediction_lines, wait_until

pytestmark = pytest.mark.emulators
DOC = googlesql.ROOT / "docs" / "bigquery.md"


@pytest.fixture(scope="module")
def written(stack, publisher, predictions_bucket, model_files, tmp_path_factory) -> dict:
    """What the product wrote: the event path's lines and both batch runs' lines, as read back from the bucket."""
    items = list(catalogue.generate(40, seed=23))
    event_lines = []
    for start in (0, 20):
        batch = [{k: v for k, v in i.to_json().items() if k != "labels"} for i in items[start : start + 20]]
        message_id = publish(stack, publisher, json.dumps({"items": batch}).encode())
        event_lines += wait_for_prediction_lines(predictions_bucket, message_id)

    folder = tmp_path_factory.mktemp("query")
    source = folder / "catalogue.jsonl"
    source.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    other = training.serialize(training.train(list(catalogue.generate(600, seed=29))))
    batch_lines = {}
    for files, run_id in ((model_files, "run-old"), (other, "run-new")):
        artifact.write_dir(folder / run_id / "model", files)
        out = folder / run_id / "out"
        batch_pipeline.run(str(source), str(out), str(folder / run_id / "model"), run_id=run_id)
        run_folder = objects.batch_run_folder(today(), run_id)
        for part in sorted(out.glob("part-*.jsonl")):
            predictions_bucket.blob(run_folder + part.name).upload_from_filename(str(part))
            lines = [json.loads(line) for line in jsonl.lines(part.read_text(encoding="utf-8"))]
            batch_lines.setdefault(files.metadata["version"], []).extend(lines)
    assert len(batch_lines) == 2 and all(len(lines) == 40 for lines in batch_lines.values())
    return {
        "items": items,
        "event": event_lines,
        "batch": batch_lines,
        "old": model_files.metadata["version"],
        "new": other.metadata["version"],
    }


def documented(fragment: str) -> str:
    [statement] = [s.sql for s in googlesql.documented_statements() if s.path == DOC and fragment in s.sql]
    return statement


def query(stack, sql: str) -> list[dict]:
    result = saikika_cli(stack, "query", sql, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_query_of_the_page_is_checked_here():
    assert len([s for s in googlesql.documented_statements() if s.path == DOC]) == 3


def test_labels_of_one_item_come_from_the_newest_prediction_of_either_path(stack, written):
    item_id = written["items"][3].id
    rows = query(stack, documented("latest_predictions").replace("'sku-123'", f"'{item_id}'"))
    candidates = [(line, "event", line["message_id"]) for line in written["event"] if line["id"] == item_id] + [
        (line, "batch", line["run_id"])
        for lines in written["batch"].values()
        for line in lines
        if line["id"] == item_id
    ]
    newest, path, source = max(candidates, key=lambda c: (c[0]["predicted_at"], c[2]))
    assert len(rows) == 1
    assert (rows[0]["labels"], rows[0]["model_version"], rows[0]["path"], rows[0]["source"]) == (
        newest["labels"],
        newest["model_version"],
        path,
        source,
    )


def test_label_counts_of_a_day_are_the_lines_of_that_day_counted(stack, written, predictions_bucket):
    # The session's stack holds what every test before this one predicted today (the event path and the online
    # path's request log, which writes in the background): the answer must be what the day's files hold.
    day = today().strftime("%Y-%m-%d")
    sql = documented("UNNEST(labels) AS label").replace("DATE '2026-11-29'", f"DATE '{day}'")

    def held() -> Counter:
        lines = [
            json.loads(line)
            for blob in predictions_bucket.list_blobs(prefix=f"predictions/dt={day}/")
            if blob.name.endswith(".jsonl")
            for line in jsonl.lines(blob.download_as_text())
            if line.strip()
        ]
        return Counter(label for line in lines for label in line["labels"])

    def agreed():
        before = held()
        rows = query(stack, sql)
        return (before, rows) if before == held() and {r["label"]: r["items"] for r in rows} == before else None

    expected, rows = wait_until("the day's label counts to match its files", agreed, timeout_s=60, every_s=1)
    assert [row["items"] for row in rows] == sorted(expected.values(), reverse=True)
    assert all(
        expected[label] >= count
        for label, count in Counter(label for line in written["event"] for label in line["labels"]).items()
    )
    assert sum(expected.values()) > 0


def test_items_whose_labels_changed_between_two_versions(stack, written):
    since = (today() - timedelta(days=30)).strftime("%Y-%m-%d")
    sql = (
        documented("old_run")
        .replace("DATE '2026-11-01'", f"DATE '{since}'")
        .replace("'OLD_VERSION'", f"'{written['old']}'")
        .replace("'NEW_VERSION'", f"'{written['new']}'")
    )
    rows = query(stack, sql)

    def labels(version):
        return {line["id"]: ",".join(sorted(line["labels"])) for line in written["batch"][version]}

    old, new = labels(written["old"]), labels(written["new"])
    expected = {(i, old[i], new[i]) for i in old if old[i] != new[i]}
    assert {(r["id"], r["old_labels"], r["new_labels"]) for r in rows} == expected
    assert expected, "the two versions should disagree on some item, or this checks nothing"
