"""Helpers for integration tests: publishing (client library and gcloud CLI) and waiting for objects."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from saikika.cloud import registry
from saikika.core import jsonl, objects
from saikika.core.settings import Settings
from saikika.tooling.local_stack import LocalStack, read_env_file
from saikika.tooling.polling import wait_until

REPO = Path(__file__).resolve().parents[2]


def start_stack(state_dir: Path, retrain_tick_s: float = 60.0, **env: str) -> LocalStack:
    return LocalStack(
        state_dir=state_dir, functions_dir=REPO / "functions", extra_env=env, retrain_tick_s=retrain_tick_s
    ).start()


def loop_buckets(stack: LocalStack, prefix: str) -> tuple[Settings, dict[str, str]]:
    """Fresh data, models and predictions buckets on the stack (named PREFIX-ROLE-…), and the loop's settings for
    them: no settling or interval to wait out, training jobs as local processes. The names by role."""
    client = stack.storage_client()
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{prefix}-{role}-{suffix}" for role in ("data", "models", "predictions")}
    for name in names.values():
        client.create_bucket(name)
    settings = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": stack.project,
            **{f"SAIKIKA_{role.upper()}_BUCKET": name for role, name in names.items()},
            "SAIKIKA_RETRAIN_SETTLE_S": "0",
            "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "0",
            "SAIKIKA_TRAINING_LAUNCHER": "local",
        }
    )
    return settings, names


def promote(stack: LocalStack, files) -> None:
    """Push a version (saikika.model.artifact.ModelFiles) and make it the champion, as `models push --promote` does."""
    bucket = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
    registry.push(bucket, *files)
    registry.promote_by_hand(bucket, files.metadata, reason="test")


def publish(stack: LocalStack, publisher, payload: bytes, topic: str = "items", **attributes: str) -> str:
    return publisher.publish(publisher.topic_path(stack.project, topic), payload, **attributes).result(timeout=30)


def today() -> datetime:
    return datetime.now(UTC)


def wait_for_blob(bucket, name: str, timeout_s: float = 60):
    return wait_until(f"gs://{bucket.name}/{name}", lambda: bucket.get_blob(name), timeout_s, every_s=0.2)


def feedback_rows(data_bucket, message_id: str, timeout_s: float = 60) -> list[dict]:
    """A feedback message's rows, wherever they are now: its own object under training/feedback/, or, once a
    retrain run has compacted it, the day shards the manifest lists."""
    from saikika.cloud import training_store

    def find():
        blob = data_bucket.get_blob(objects.feedback(today(), message_id))
        try:
            text = blob.download_as_text() if blob else ""
        except Exception:  # noqa: BLE001  (compacted between the listing and the read)
            text = ""
        if not text:
            manifest, _ = training_store.read_manifest(data_bucket)
            text = "".join(data_bucket.blob(s.name).download_as_text() for s in manifest.shards)
        found = [json.loads(line) for line in jsonl.lines(text) if line.strip()]
        return [row for row in found if row.get("message_id") == message_id]

    return wait_until(f"the rows of feedback message {message_id}", find, timeout_s, every_s=0.2)


def wait_for_prediction_lines(bucket, message_id: str) -> list[dict]:
    blob = wait_for_blob(bucket, objects.predictions(today(), message_id))
    return [json.loads(line) for line in jsonl.lines(blob.download_as_text())]


def wait_for_rejected(bucket, message_id: str) -> dict:
    return json.loads(wait_for_blob(bucket, objects.rejected(today(), message_id)).download_as_text())


def gcloud_publish(stack: LocalStack, topic: str, message: str) -> str:
    """Publish with the gcloud CLI itself, with the settings the stack's local.env gives a person (its endpoint
    overrides, token file, project and gcloud config)."""
    env = {**os.environ, **read_env_file(stack.env_file)}
    result = subprocess.run(
        ["gcloud", "pubsub", "topics", "publish", topic, f"--message={message}", "--format=json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)["messageIds"][0]


def saikika_cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess:
    """Run the saikika command as a person would, with the stack's local.env settings."""
    import sys

    env = {**os.environ, **stack.env}
    command = [sys.executable, "-m", "saikika.tooling.cli", *args]  # this interpreter's saikika, as the script runs it
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def count_requests(client) -> list[str]:
    """Record every HTTP request a storage client makes from now on ("METHOD path"): what a code path costs."""
    calls: list[str] = []
    original = client._http.request

    def request(method, url, *args, **kwargs):
        calls.append(f"{method} {url.split('?')[0]}")
        return original(method, url, *args, **kwargs)

    client._http.request = request
    return calls
