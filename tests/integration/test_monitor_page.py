"""`saikika monitor` on the emulators, run as a person runs it (a subprocess with the stack's settings): the champion
promoted by hand and judged by the promote function, feedback and malformed messages through Pub/Sub and the real
functions, and contract-shaped monitoring objects (live quality, drift, health) and run records uploaded through
the storage client (the loop's own writers of those land with the other parts of issue 21). The page and its
figures exist, and summary.json's numbers are the buckets' own, read back here with the storage client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest

from saikika.cloud import gcs, monitoring_source
from saikika.core import jsonl, objects
from saikika.model import catalogue
from saikika.tooling.cli.monitor import bucket_source
from saikika.tooling.polling import wait_until
from tests.integration.helpers import (
    count_requests,
    feedback_rows,
    promote,
    publish,
    start_stack,
    today,
)

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory, model_files):
    # A stack of its own with no tick: nothing but this test writes monitoring objects or runs retraining (one
    # feedback message waits, pending, for a tick that never comes).
    stack = start_stack(tmp_path_factory.mktemp("monitor"), retrain_tick_s=3600.0)
    try:
        promote(stack, model_files)
        yield stack
    finally:
        stack.stop()


def saikika(stack, *args: str) -> subprocess.CompletedProcess:
    """The saikika command in a process of its own with the stack's settings (`python -m`: this tree's saikika)."""
    command = [sys.executable, "-m", "saikika.tooling.cli", *args]
    return subprocess.run(command, env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=300)


def _buckets(stack):
    client = stack.storage_client()
    return {
        kind: client.bucket(stack.env[f"SAIKIKA_{kind.upper()}_BUCKET"]) for kind in ("data", "models", "predictions")
    }


def _quality(version: str, started, micro_f1: float) -> dict:
    return {
        "champion_version": version,
        "computed_at": started.isoformat(),
        "run_started": started.isoformat(),
        "rows": 30,
        "first_event_time": started.isoformat(),
        "last_event_time": started.isoformat(),
        "trained_until": started.isoformat(),
        "micro_f1": micro_f1,
        "macro_f1": micro_f1,
        "exact_match": micro_f1,
        "per_label": {},
        "offline_micro_f1": 0.5,  # the page takes the version's metadata.json instead
        "degraded": False,
        "why": None,
    }


def _drift(day: str, items: int, shares: dict, none: float) -> dict:
    return {
        "day": day,
        "source": "event",
        "run_id": None,
        "champion_version": "v",
        "items": items,
        "objects": 3,
        "no_label_share": none,
        "label_shares": shares,
        "baseline_shares": shares,
        "divergence": 0.03,
        "bound": 0.1,
        "above_bound": False,
        "moved": [],
        "computed_at": today().isoformat(),
    }


@pytest.fixture(scope="module")
def written(own_stack, model_files):
    """What the stack holds once the functions have written theirs and the monitoring objects are uploaded."""
    buckets, version, now = _buckets(own_stack), model_files.metadata["version"], today()
    models = buckets["models"]
    # The hand promotion's entry, and the promote function's verdict on the same version (its own entry).
    wait_until(
        "two decision-log entries", lambda: len(list(models.list_blobs(prefix=objects.DECISION_LOG_PREFIX))) >= 2, 60
    )
    publisher = own_stack.publisher()
    labeled = [item.to_json() for item in catalogue.generate(3, seed=5)]
    feedback_id = publish(own_stack, publisher, json.dumps({"items": labeled}).encode(), topic="feedback")
    feedback_rows(buckets["data"], feedback_id)
    for topic in ("items", "feedback"):
        bad = publish(own_stack, publisher, b'{"items": [{"title": "no id"}]}', topic=topic)
        wait_until(
            f"rejected {topic}", lambda b=bad, t=topic: buckets["predictions"].get_blob(objects.rejected(now, b, t)), 60
        )
    for hours, f1 in ((30, 0.81), (20, 0.77), (2, 0.84), (24 * 60, 0.1)):  # the last one is outside the window
        started = now - timedelta(hours=hours)
        gcs.create_json(models, objects.live_quality(started, version), _quality(version, started, f1))
    yesterday = f"{now - timedelta(days=1):%Y-%m-%d}"
    gcs.create_json(models, objects.drift_day(yesterday), _drift(yesterday, 40, {"kids": 0.5, "outdoor": 0.25}, 0.25))
    gcs.create_json(models, objects.drift_day(f"{now:%Y-%m-%d}"), _drift(f"{now:%Y-%m-%d}", 9, {"kids": 0.9}, 0.1))
    gcs.create_json(
        models,
        objects.HEALTH_OBJECT,
        {"checked_at": now.isoformat(), "status": "stalled", "problems": ["3 failed runs in a row"]},
    )
    for hours, status in ((26, "trained"), (5, "failed"), (4, "failed")):
        started = now - timedelta(hours=hours)
        record = {
            "status": status,
            "reason": status,
            "version": None,
            "trigger": "t",
            "started_at": started.isoformat(),
            "seconds": 1.0,
            "pending": 1,
        }
        gcs.create_json(models, objects.retrain_run(started), record)
    shard = {
        "name": f"compacted/dt={yesterday}/x.jsonl",
        "generation": 1,
        "day": yesterday,
        "rows": 12,
        "rows_digest": "0",
        "bytes": 1,
    }
    gcs.create_json(buckets["data"], objects.COMPACTION_MANIFEST, {"shards": [shard], "retiring": [], "rows": 12})
    return buckets, version


def test_the_page_shows_what_the_buckets_hold(own_stack, written, tmp_path):
    buckets, version = written
    result = saikika(own_stack, "monitor", "--out", str(tmp_path / "page"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "page" / "index.html").read_text(encoding="utf-8")
    linked = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len([name for name in linked if name.endswith(".png")]) == 4
    for name in linked:
        assert (tmp_path / "page" / name).is_file(), name
    summary = json.loads((tmp_path / "page" / "summary.json").read_text(encoding="utf-8"))
    models = buckets["models"]

    def stored(prefix: str, bucket=models) -> list[dict]:
        return [json.loads(blob.download_as_bytes()) for blob in bucket.list_blobs(prefix=prefix)]

    window = f"{today() - timedelta(days=29):%Y-%m-%d}"
    quality = sorted(
        (q for q in stored(objects.LIVE_QUALITY_PREFIX) if q["run_started"][:10] >= window),
        key=lambda q: q["run_started"],
    )
    assert [r["micro_f1"] for r in summary["live_quality"]["runs"]] == [q["micro_f1"] for q in quality] and len(
        quality
    ) == 3
    metadata = json.loads(models.blob(objects.version_file(version, objects.METADATA_FILE)).download_as_bytes())
    assert summary["live_quality"]["versions"] == [
        {
            "version": version,
            "offline_micro_f1": metadata["metrics"]["micro_f1"],
            "first_run": quality[0]["run_started"],
            "last_run": quality[-1]["run_started"],
            "runs": 3,
        }
    ]
    decisions = stored(objects.DECISION_LOG_PREFIX)
    assert sorted(d["outcome"] for d in summary["decisions"]["decisions"]) == sorted(d["outcome"] for d in decisions)
    assert summary["runs"]["outcomes"] == {"trained": 1, "failed": 2}
    assert (
        summary["headline"]["status"] == "stalled" and summary["headline"]["live_micro_f1"] == quality[-1]["micro_f1"]
    )
    drift = {d["day"]: d for d in stored(objects.DRIFT_DAY_PREFIX)}
    by_day = {day["day"]: day for day in summary["daily"]}
    loose = [blob for blob in buckets["data"].list_blobs(prefix=objects.FEEDBACK_FOLDER)]
    manifest = json.loads(buckets["data"].blob(objects.COMPACTION_MANIFEST).download_as_bytes())
    rejected = list(buckets["predictions"].list_blobs(prefix="rejected/"))
    for day, counts in by_day.items():
        assert counts["items_predicted"] == drift.get(day, {}).get("items", 0)
        rows = sum(s["rows"] for s in manifest["shards"] if s["day"] == day)
        rows += sum(len(jsonl.lines(b.download_as_text())) for b in loose if objects.day_of(b.name) == day)
        assert counts["feedback_rows"] == rows
        assert counts["rejected_inputs"] == sum(objects.day_of(b.name) == day for b in rejected)
    assert set(drift) <= set(by_day) and by_day[f"{today():%Y-%m-%d}"]["feedback_rows"] == 3
    assert by_day[f"{today():%Y-%m-%d}"]["rejected_by_source"] == {"items": 1, "feedback": 1}


def test_the_page_reads_no_prediction_object(own_stack, written):
    source = bucket_source(own_stack.env["SAIKIKA_MODELS_BUCKET"], own_stack.env)
    [client] = {id(bucket.client): bucket.client for bucket in source.buckets.values()}.values()
    requests = count_requests(client)
    found = monitoring_source.read(source, today() - timedelta(days=29))
    assert found.feedback_rows and found.rejected  # the data and predictions buckets were read
    predictions = own_stack.env["SAIKIKA_PREDICTIONS_BUCKET"]
    on_predictions = [call for call in requests if f"/b/{predictions}/" in call]
    # Two listings (rejected items messages, rejected feedback messages) and no object read there.
    assert len(on_predictions) == 2 and all(call.endswith(f"/b/{predictions}/o") for call in on_predictions)
    assert not [call for call in requests if "predictions%2F" in call]
