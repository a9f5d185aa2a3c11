"""`saikika query` runs each query of docs/bigquery.md on predictions the product wrote itself, and each answer is
the one the files hold: items published to the local stack (the event path, `predictions/dt=DAY/...`), two Beam
batch runs over one catalogue with two model versions, put where batch runs write them (`batch/dt=DAY/run=RUN/`),
and feedback published to the stack's feedback topic (the feedback function's objects, compacted or not)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from saikika.cloud import batch_pipeline
from saikika.core import jsonl, objects
from saikika.model import artifact, catalogue, training
from tests import googlesql
from tests.integration.helpers import (
    feedback_rows,
    publish,
    saikika_cli,
    today,
    wait_for_prediction_lines,
    wait_until,
)

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
    assert len([s for s in googlesql.documented_statements() if s.path == DOC]) == 4


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


def _lines(bucket, prefix: str) -> list[dict]:
    return [
        json.loads(line)
        for blob in bucket.list_blobs(prefix=prefix)
        if blob.name.endswith(".jsonl")
        for line in jsonl.lines(blob.download_as_text())
        if line.strip()
    ]


def test_served_quality_judges_the_published_feedback_against_what_was_served(
    stack, written, publisher, storage_client, predictions_bucket
):
    """Feedback on items the event path predicted (half confirming what was served, half correcting it), through
    the feedback function: the view's counts are the ones the files give, wherever the rows are (a retrain run may
    have compacted them meanwhile), with every other test's predictions and feedback in the stack beside them."""
    data_bucket = storage_client.bucket(stack.env["SAIKIKA_DATA_BUCKET"])
    served = {line["id"]: line["labels"] for line in written["event"]}
    confirming = [item for item in written["items"] if served[item.id]][:4]
    correcting = [item for item in written["items"] if item not in confirming][:4]
    labels = {item.id: served[item.id] for item in confirming} | {
        item.id: [f"corrected-{n}"] for n, item in enumerate(correcting)
    }
    sent = [
        {**{k: v for k, v in item.to_json().items() if k != "labels"}, "labels": labels[item.id]}
        for item in confirming + correcting
    ]
    message_id = publish(stack, publisher, json.dumps({"items": sent}).encode(), topic="feedback")
    assert len(feedback_rows(data_bucket, message_id)) == 8
    sql = documented("served_quality")

    def agreed():
        def held():
            return (
                _lines(predictions_bucket, "predictions/"),
                _lines(data_bucket, objects.FEEDBACK_FOLDER) + _lines(data_bucket, objects.COMPACTED_PREFIX),
            )

        before = held()
        rows = query(stack, sql)
        expected = googlesql.served_quality_by_hand(*before)
        return rows if held() == before and googlesql.served_quality_agrees(rows, expected) else None

    rows = wait_until("served quality to match the files", agreed, timeout_s=90, every_s=2)
    corrected = [r for r in rows if r["label"].startswith("corrected-")]
    assert len(corrected) == 4 and all(r["false_negatives"] == 1 and r["true_positives"] == 0 for r in corrected)
    versions = {line["model_version"] for line in written["event"]}  # the champion(s) that served the event path
    assert any(r["model_version"] in versions and r["true_positives"] >= 1 for r in rows)
