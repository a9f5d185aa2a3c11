"""`make demo`: the local loop end to end on the product's own synthetic catalogue.

v1 is trained here and pushed by hand; items are predicted through Pub/Sub and HTTP; then feedback
(corrections and a label the model has never seen) and the catalogue land in the data bucket, the
retrain function trains v2 by itself, the promote function judges it against v1, and new items are
predicted by whichever model won.

`run` tells that story as a sequence of steps, each a function over the `Demo` (the running stack, its
buckets, the console, the work folder) that prints its part.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from saikika.cloud import data_files, gcs, registry
from saikika.core import jsonl, objects, rows
from saikika.core.items import Item
from saikika.model import artifact, catalogue, training
from saikika.model.artifact import ModelFiles
from saikika.tooling.local_stack import FEEDBACK_TOPIC, ITEMS_TOPIC, LocalStack
from saikika.tooling.polling import wait_until

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

# Wide enough for the tables when the output goes to a file or CI log rather than a terminal, and its lines left
# whole there rather than cut mid-sentence.
console = Console(width=None if sys.stdout.isatty() else 140, soft_wrap=not sys.stdout.isatty())
ALL_FEATURES = {**catalogue.FEATURES, **catalogue.NEW_FEATURES}


@dataclass(frozen=True)
class Demo:
    """What every step works on: the running stack, its buckets and publisher, the console, the work folder."""

    stack: LocalStack
    console: Console
    work: Path
    data_bucket: gcs.Bucket
    models_bucket: gcs.Bucket
    predictions_bucket: gcs.Bucket
    publisher: PublisherClient

    @classmethod
    def on(cls, stack: LocalStack, console: Console, work: Path) -> Demo:
        client = stack.storage_client()
        work.mkdir(parents=True, exist_ok=True)
        return cls(
            stack,
            console,
            work,
            data_bucket=client.bucket(stack.env["SAIKIKA_DATA_BUCKET"]),
            models_bucket=client.bucket(stack.env["SAIKIKA_MODELS_BUCKET"]),
            predictions_bucket=client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"]),
            publisher=stack.publisher(),
        )

    def step(self, text: str) -> None:
        _step(self.console, text)


def _step(console: Console, text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/]")


@dataclass(frozen=True)
class FirstModel:
    """v1 as trained here: its files, the catalogue it learnt from, and when (the catalogue's rows carry it)."""

    files: ModelFiles
    catalogue: list[Item]
    trained_at: str

    @property
    def version(self) -> str:
        return self.files.metadata["version"]


def wait_for_objects(bucket, names: list[str], timeout_s: float = 120) -> dict[str, str]:
    """Poll until every named object exists; returns their text."""
    found: dict[str, str] = {}

    def check():
        for name in names:
            if name not in found and (blob := bucket.get_blob(name)) is not None:
                found[name] = blob.download_as_text()
        return len(found) == len(names)

    wait_until(f"{len(names)} object(s) in gs://{bucket.name}", check, timeout_s)
    return found


def publish(publisher, project: str, topic: str, payloads: list[bytes]) -> list[str]:
    futures = [publisher.publish(publisher.topic_path(project, topic), payload) for payload in payloads]
    return [future.result(timeout=30) for future in futures]


def _public(item) -> dict:
    return {k: v for k, v in item.to_json().items() if k != "labels"}


def predict_and_show(demo: Demo, items: list[Item], title: str) -> list[dict]:
    """Publish items (singles and one batch), read the predictions back, print them as a table."""
    public = [_public(item) for item in items]
    payloads = [json.dumps(p, ensure_ascii=False).encode() for p in public[:-4]]
    payloads.append(json.dumps({"items": public[-4:]}, ensure_ascii=False).encode())
    message_ids = publish(demo.publisher, demo.stack.project, ITEMS_TOPIC, payloads)
    demo.console.print(
        f"  {len(payloads)} messages published to '{ITEMS_TOPIC}' ({len(payloads) - 1} single items and one batch of 4)"
    )
    today = datetime.now(UTC)
    names = [objects.predictions(today, message_id) for message_id in message_ids]
    found = wait_for_objects(demo.predictions_bucket, names)
    records = [json.loads(line) for name in names for line in jsonl.lines(found[name])]
    truth = {item.id: item.labels for item in items}
    titles = {item.id: item.title for item in items}
    table = Table(title=title)
    for column in ("item", "title", "predicted labels", "top scores", "true labels", "model"):
        table.add_column(column, overflow="fold")
    for record in records:
        top = sorted(record["scores"].items(), key=lambda kv: -kv[1])[:2]
        table.add_row(
            record["id"],
            titles[record["id"]][:32],
            ", ".join(record["labels"]) or "—",
            " ".join(f"{k}:{v:.2f}" for k, v in top),
            ", ".join(truth[record["id"]]) or "—",
            record["model_version"][-8:],
        )
    demo.console.print(table)
    return records


def run(state_dir: Path) -> None:
    started = time.perf_counter()
    fast_loop = {
        "SAIKIKA_RETRAIN_MIN_INTERVAL_S": os.environ.get("SAIKIKA_RETRAIN_MIN_INTERVAL_S", "5"),
        "SAIKIKA_MODEL_TTL_S": os.environ.get("SAIKIKA_MODEL_TTL_S", "2"),
        "SAIKIKA_RETRAIN_SETTLE_S": os.environ.get("SAIKIKA_RETRAIN_SETTLE_S", "3"),
        # The day's label drift, recomputed every few seconds rather than every 15 minutes: the page shows today.
        "SAIKIKA_DRIFT_INTERVAL_S": os.environ.get("SAIKIKA_DRIFT_INTERVAL_S", "2"),
    }
    _step(console, "Starting the local stack: Pub/Sub emulator, fake-gcs-server, six functions-framework processes")
    with LocalStack(state_dir=state_dir, extra_env=fast_loop, retrain_tick_s=1.0) as stack:
        console.print(f"  settings in {state_dir / 'local.env'}, logs in {state_dir / 'logs'}")
        demo = Demo.on(stack, console, state_dir / "demo")
        v1 = train_v1(demo)
        push_and_promote(demo, v1)
        predict_through_pubsub(demo)
        reject_a_malformed_message(demo)
        predict_over_http(demo)
        predict_a_dropped_catalogue(demo)
        send_feedback(demo, v1)
        export_the_catalogue(demo, v1)
        decision = wait_for_the_decision(demo)
        show_the_decision(demo, decision, copy_the_report(demo, decision["version"]))
        if decision["outcome"] == "promoted":
            predict_after_the_hot_swap(demo, float(fast_loop["SAIKIKA_MODEL_TTL_S"]))
        show_the_loop_health(demo)
        write_the_monitoring_page(demo)
        demo.step("Shutting down")
    console.print(f"\n[bold green]Demo finished in {time.perf_counter() - started:.0f} s[/]")


def train_v1(demo: Demo) -> FirstModel:
    demo.step("Generating a synthetic bilingual marketplace catalogue and training v1")
    base = list(catalogue.generate(3000, seed=7))
    data_files.write_jsonl(demo.work / "catalogue.jsonl", base)
    trained = training.train(base)
    v1_trained_at = datetime.now(UTC).isoformat()
    files = training.serialize(trained, extra={"data_sources": [str(demo.work / "catalogue.jsonl")]})
    artifact.write_dir(demo.work / "model-v1", files)
    v1, m = FirstModel(files, base, v1_trained_at), trained.metrics
    demo.console.print(f"  v1 = {v1.version}: {trained.rows_used} rows, labels: {', '.join(trained.labels)}")
    demo.console.print(
        f"  tuning split: top-1 {m['top1_accuracy']:.3f}, micro F1 {m['micro_f1']:.3f}, macro F1 {m['macro_f1']:.3f}"
    )
    return v1


def push_and_promote(demo: Demo, v1: FirstModel) -> None:
    demo.step("Pushing v1 to the models bucket and promoting it (saikika models push --promote)")
    models_bucket, metadata = demo.models_bucket, v1.files.metadata
    registry.push(models_bucket, *v1.files)
    registry.promote_by_hand(models_bucket, metadata, reason="demo: first model")
    # The rows promotions are judged on; training never reads eval/.
    holdout = list(catalogue.generate(600, seed=99, features=ALL_FEATURES, id_prefix="holdout", noise=0.0))
    gcs.create_only(demo.data_bucket, objects.HOLDOUT_OBJECT, rows.dumps(holdout), jsonl.CONTENT_TYPE)


def predict_through_pubsub(demo: Demo) -> None:
    demo.step("Publishing new items to Pub/Sub (google-cloud-pubsub client)")
    fresh = list(catalogue.generate(10, seed=2026, features=ALL_FEATURES, id_prefix="new", noise=0.0))
    predict_and_show(demo, fresh, "Predictions by v1 (read back from the bucket)")


def reject_a_malformed_message(demo: Demo) -> None:
    message = b'{"items": [{"title": "an item without an id"}]}'
    [bad_id] = publish(demo.publisher, demo.stack.project, ITEMS_TOPIC, [message])
    rejected_name = objects.rejected(datetime.now(UTC), bad_id)
    rejected = json.loads(wait_for_objects(demo.predictions_bucket, [rejected_name])[rejected_name])
    demo.console.print(
        f"  a malformed message → gs://{demo.predictions_bucket.name}/{rejected_name}: {rejected['errors'][0]['error']}"
    )


def predict_over_http(demo: Demo) -> None:
    demo.step("Calling the HTTP endpoint (predict_http) once")
    url = demo.stack.env["SAIKIKA_PREDICT_URL"]
    body = json.dumps({"instances": [{"id": "http-1", "title": "防水 Bluetooth スピーカー 持ち運び便利"}]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    demo.console.print(
        f"  POST {url} → {response.status}: {answer['predictions'][0]['labels']} (model {answer['model_version']})"
    )


def predict_a_dropped_catalogue(demo: Demo) -> None:
    demo.step("Batch: a catalogue file dropped under batch/input/ is predicted by the batch function")
    data_bucket, predictions_bucket = demo.data_bucket, demo.predictions_bucket
    shop = list(catalogue.generate(2000, seed=31, id_prefix="shop"))
    name = f"{objects.BATCH_INPUT_PREFIX}shop-catalogue.jsonl"
    data_bucket.blob(name).upload_from_string(
        jsonl.dumps(_public(item) for item in shop) + "not json\n", content_type=jsonl.CONTENT_TYPE
    )
    dropped = data_bucket.get_blob(name)
    run_folder = objects.batch_run_folder(dropped.time_created, objects.batch_run_id(name, dropped.generation))
    success_name = run_folder + objects.BATCH_SUCCESS_FILE
    success = json.loads(wait_for_objects(predictions_bucket, [success_name])[success_name])
    demo.console.print(
        f"  gs://{data_bucket.name}/{name} → gs://{predictions_bucket.name}/{run_folder}: "
        f"{success['predicted']} predicted, {success['rejected']} rejected (kept with its line number), "
        f"model {success['model_version']}"
    )
    demo.console.print(
        "  (a whole catalogue on Beam: saikika batch --input 'gs://…/*.jsonl'; README, Batch prediction)"
    )


def send_feedback(demo: Demo, v1: FirstModel) -> None:
    demo.step("Feedback: corrected labels, and a label v1 has never seen ('limited-edition')")
    clean = list(catalogue.generate(3000, seed=7, noise=0.0))
    corrections = [fixed for noisy, fixed in zip(v1.catalogue, clean) if noisy.labels != fixed.labels]
    novel = list(catalogue.generate(400, seed=4242, features=ALL_FEATURES, id_prefix="fb", noise=0.0))
    feedback = corrections + novel
    batches = [feedback[i : i + 100] for i in range(0, len(feedback), 100)]
    feedback_ids = publish(
        demo.publisher,
        demo.stack.project,
        FEEDBACK_TOPIC,
        [json.dumps({"items": [i.to_json() for i in batch]}, ensure_ascii=False).encode() for batch in batches],
    )
    today = datetime.now(UTC)
    wait_for_objects(demo.data_bucket, [objects.feedback(today, message_id) for message_id in feedback_ids])
    new_label = sum("limited-edition" in (item.labels or ()) for item in feedback)
    demo.console.print(
        f"  {len(corrections)} corrections and {len(novel)} new labeled items ({new_label} with "
        f"'limited-edition') → gs://{demo.data_bucket.name}/training/feedback/"
    )


def export_the_catalogue(demo: Demo, v1: FirstModel) -> None:
    # The catalogue as it was when v1 was trained: its rows carry that time, so the corrections published since
    # are newer and win (newest event per item; the object itself is written after them).
    exported = jsonl.dumps({**item.to_json(), rows.EVENT_TIME_FIELD: v1.trained_at} for item in v1.catalogue)
    gcs.create_only(demo.data_bucket, objects.base_training("catalogue.jsonl"), exported, jsonl.CONTENT_TYPE)
    demo.console.print(
        f"  the catalogue exported to gs://{demo.data_bucket.name}/{objects.base_training('catalogue.jsonl')} "
        f"(event_time {v1.trained_at}: the corrections are newer)"
    )


def wait_for_the_decision(demo: Demo) -> dict:
    """The promote function's decision on v2, once retraining has settled; each retrain run is printed."""
    demo.step("The retrain function trains v2 by itself; the promote function judges it")
    models_bucket = demo.models_bucket
    decision = wait_until(
        "a judged version trained on all the data written",
        lambda: _decision_when_settled(models_bucket),
        timeout_s=240,
    )
    for run_blob in models_bucket.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX):
        run = json.loads(run_blob.download_as_bytes())
        data = run.get("training_data") or {}
        demo.console.print(
            f"  retrain run: {run['status']} on {data.get('rows_newest_per_item', '?')} rows "
            f"({data.get('shards', 0)} compacted shards, {data.get('loose_objects', 0)} other objects) "
            f"in {run['seconds']} s → {run['version'] or run['reason']}"
        )
    return decision


def copy_the_report(demo: Demo, v2: str) -> Path:
    """v2's training report (index.html and its figures), copied from the models bucket into the work folder."""
    report_dir = demo.work / "v2-report"
    report_dir.mkdir(exist_ok=True)
    for blob in demo.models_bucket.list_blobs(prefix=objects.version_file(v2, objects.REPORT_FOLDER)):
        blob.download_to_filename(report_dir / blob.name.rsplit("/", 1)[1])
    return report_dir


def show_the_decision(demo: Demo, decision: dict, report_dir: Path) -> None:
    models_bucket, console, v2 = demo.models_bucket, demo.console, decision["version"]
    v2_meta = registry.read_metadata(models_bucket, v2)
    console.print(
        f"  v2 = {v2}: trained on {v2_meta['rows_used']} rows (data digest "
        f"{v2_meta['training_data']['digest'][:12]}), labels: {', '.join(v2_meta['labels'])}"
    )
    cand, champ = decision.get("candidate_metrics") or {}, decision.get("champion_metrics") or {}
    console.print(f"  judged on {decision.get('evaluation_rows')} rows ({decision.get('evaluated_on')}):")
    for key in ("micro_f1", "macro_f1", "top1_accuracy"):
        if key in cand and key in champ:
            console.print(f"    {key:14} v1 {champ[key]:.3f} → v2 {cand[key]:.3f}  ({cand[key] - champ[key]:+.3f})")
    colour = "green" if decision["outcome"] == "promoted" else "red"
    console.print(f"  decision: [{colour}]{decision['outcome']}[/] — {decision['reason']}")
    console.print(
        f"  v2 report: gs://{models_bucket.name}/{objects.version_file(v2, objects.REPORT_FOLDER)}index.html "
        f"(copied to {report_dir / 'index.html'})"
    )


def predict_after_the_hot_swap(demo: Demo, model_ttl_s: float) -> None:
    demo.step("New items, predicted by v2 after the predictors' hot swap (no restart)")
    # A predictor looks at the champion again once its model is older than the TTL: nothing to poll before that.
    time.sleep(model_ttl_s + 0.5)
    newer = list(catalogue.generate(8, seed=31337, features=ALL_FEATURES, id_prefix="after", noise=0.0))
    records = predict_and_show(demo, newer, "Predictions after the swap")
    versions = {record["model_version"] for record in records}
    demo.console.print(f"  served by: {', '.join(sorted(versions))}")


def show_the_loop_health(demo: Demo) -> None:
    """What `saikika status` prints: the health a retrain tick wrote after the demo's run (the tick comes every
    second here, every minute in the cloud)."""
    from saikika.tooling.cli.status import health_table

    demo.step("The loop's health (saikika status)")
    since = datetime.now(UTC).isoformat()

    def fresh() -> dict | None:
        found = gcs.read_json(demo.models_bucket, objects.HEALTH_OBJECT)
        return found[0] if found and found[0].get("checked_at", "") >= since else None

    health = wait_until("a retrain tick to write the loop's health", fresh, timeout_s=60, every_s=0.5)
    demo.console.print(health_table(health, f"gs://{demo.models_bucket.name}/{objects.HEALTH_OBJECT}"))


def write_the_monitoring_page(demo: Demo) -> None:
    """What `saikika monitor` writes, from the stack's buckets: the page's path and its headline."""
    from saikika.cloud.monitoring_source import DATA, MODELS, PREDICTIONS, BucketSource
    from saikika.core.monitoring_summary import headline_lines
    from saikika.tooling.cli.monitor import write_page

    demo.step("The monitoring page (saikika monitor)")
    source = BucketSource({DATA: demo.data_bucket, MODELS: demo.models_bucket, PREDICTIONS: demo.predictions_bucket})
    out = demo.work / "monitor"
    summary = write_page(source, out)
    demo.console.print(f"  {out / 'index.html'} (figures and summary.json beside it)")
    for line in headline_lines(summary):
        demo.console.print(f"  {line}")


def _decision_when_settled(models_bucket) -> dict | None:
    """Once no training work is pending and no run holds the lease: the decision on the newest trained version."""
    if any(True for _ in models_bucket.list_blobs(prefix=objects.RETRAIN_PENDING_PREFIX, max_results=1)):
        return None
    held = gcs.read_json(models_bucket, objects.RETRAIN_LEASE_OBJECT)
    if held is not None and held[0].get("holder") is not None:
        return None
    runs = sorted(models_bucket.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX), key=lambda b: b.name)
    trained = [json.loads(b.download_as_bytes()) for b in runs]
    trained = [run for run in trained if run["status"] == "trained"]
    return registry.read_decision(models_bucket, trained[-1]["version"]) if trained else None
