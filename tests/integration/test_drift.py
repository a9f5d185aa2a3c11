"""Label drift on the emulators, default settings: items of the usual mix keep the day's drift under its bound;
items skewed to one label raise it above, and the drift step writes the day's object and the WARNING line an alert
matches. A stack of its own, so the day's counts are exactly what this test published."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta

import pytest

from saikika.cloud import drift, gcs
from saikika.core import jsonl, objects
from saikika.core.drift import NONE, LabelDrift
from saikika.core.logs import JsonFormatter
from saikika.core.settings import Settings
from saikika.model import catalogue
from tests import alert_filters
from tests.integration.helpers import promote, publish, start_stack, today, wait_for_blob

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def drift_stack(tmp_path_factory, model_files):
    running = start_stack(tmp_path_factory.mktemp("drift"))
    try:
        promote(running, model_files)
        yield running
    finally:
        running.stop()


def publish_messages(stack, publisher, items: list[dict], per_message: int) -> list[str]:
    """Publish `items` in messages of `per_message` and wait for every predictions object."""
    ids = [
        publish(stack, publisher, json.dumps({"items": items[i : i + per_message]}, ensure_ascii=False).encode())
        for i in range(0, len(items), per_message)
    ]
    bucket = stack.storage_client().bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    for message_id in ids:
        wait_for_blob(bucket, objects.predictions(today(), message_id))
    return ids


class CapturedLines:
    """saikika's log lines as they are written to stdout (the same formatter), for the duration of a test."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.logger = logging.getLogger("saikika")

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)

    def lines(self, message: str) -> list[dict]:
        found = [json.loads(line) for line in jsonl.lines(self.stream.getvalue())]
        return [line for line in found if line["message"] == message]


def test_items_skewed_to_one_label_raise_the_days_drift_above_its_bound(drift_stack, model_files):
    client = drift_stack.storage_client()
    with drift_stack.client_environment():
        settings = Settings.from_env(drift_stack.env)
    assert (settings.drift_bound, settings.drift_interval_s) == (0.1, 900.0)
    models = client.bucket(settings.models_bucket)
    publisher = drift_stack.publisher()
    started = today()
    day = f"{started:%Y-%m-%d}"

    usual = [
        {"id": f"usual-{i}", "title": item.title, "description": item.description, "tags": list(item.tags)}
        for i, item in enumerate(catalogue.generate(200, seed=2112))
    ]
    usual_messages = publish_messages(drift_stack, publisher, usual, per_message=20)
    # The step's clock stays on `day` for the interval and a minute more, so that a suite running up to midnight
    # (UTC) does not see the day close under it (once in CI); the day's objects are listed whatever the clock.
    next_midnight = started.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    now = min(time.time(), next_midnight.timestamp() - settings.drift_interval_s - 120)
    with CapturedLines() as captured:
        written = {d.day: d for d in drift.update(settings, client, now)}
    first = written[day]
    assert (first.items, first.objects, first.uncounted_objects) == (200, len(usual_messages), 0)
    assert first.champion_version == model_files.metadata["version"]
    assert first.baseline_shares == model_files.metadata["label_shares"]
    assert first.divergence < settings.drift_bound and not first.above_bound
    [line] = [line for line in captured.lines("label drift") if line["day"] == day]
    assert line["severity"] == "INFO" and line["above_bound"] is False
    assert alert_filters.fires("label_drift_divergence", line) and not alert_filters.fires("label_drift", line)
    print("label drift line below the bound:", json.dumps(line, ensure_ascii=False))
    # Within the interval nothing is due: no listing, no object rewritten.
    assert drift.update(settings, client, now + 60) == []

    # Items a marketplace suddenly sends of one kind: almost every item is predicted `kids`.
    skewed = [{"id": f"toy-{i}", "title": f"子供 おもちゃ {i}"} for i in range(600)]
    skewed_messages = publish_messages(drift_stack, publisher, skewed, per_message=50)
    later = now + settings.drift_interval_s
    with CapturedLines() as captured:
        [second] = drift.update(settings, client, later)
    assert second.day == day
    assert (second.items, second.objects) == (800, len(usual_messages) + len(skewed_messages))
    assert second.divergence > settings.drift_bound and second.above_bound
    assert second.moved[0]["label"] == "kids" and second.moved[0]["change"] > 0.5
    assert second.label_shares[NONE] == second.no_label_share
    # The object is what the step returned, and the line is the one the drift alert matches.
    stored, _ = gcs.read_json(models, objects.drift_day(day))
    assert LabelDrift.from_json(stored) == second
    [line] = captured.lines("label drift")
    print("label drift line:", json.dumps(line, ensure_ascii=False))
    assert line["severity"] == "WARNING"
    assert line["above_bound"] is True
    assert line["divergence"] == second.divergence and line["bound"] == settings.drift_bound
    assert (line["day"], line["source"], line["run_id"], line["items"]) == (day, "event", None, 800)
    assert (line["moved_label"], line["champion_version"]) == ("kids", model_files.metadata["version"])
    assert line["no_label_share"] == second.no_label_share
    # What Cloud Monitoring would make of it, as terraform deploys the alert and the metric.
    assert alert_filters.fires("label_drift", line) and alert_filters.fires("label_drift_divergence", line)
