"""`make demo`: the local loop end to end on the product's own synthetic catalogue."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

from saikika import artifact, catalogue, datasets, model, paths, registry
from saikika.local_stack import ITEMS_TOPIC, LocalStack

console = Console()


def _step(text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/]")


def wait_for_objects(bucket, names: list[str], timeout_s: float = 120) -> dict[str, str]:
    """Poll until every named object exists; returns their text."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(found) < len(names):
        if time.monotonic() > deadline:
            missing = sorted(set(names) - set(found))
            raise TimeoutError(f"{len(missing)} object(s) never appeared, e.g. {missing[:3]}")
        for name in names:
            if name not in found:
                blob = bucket.get_blob(name)
                if blob is not None:
                    found[name] = blob.download_as_text()
        time.sleep(0.3)
    return found


def publish_items(publisher, topic_path: str, payloads: list[bytes]) -> list[tuple[str, float]]:
    futures = [publisher.publish(topic_path, payload) for payload in payloads]
    return [(future.result(timeout=30), time.time()) for future in futures]


def run(state_dir: Path) -> None:

    started = time.perf_counter()
    _step("Starting the local stack (Pub/Sub emulator, fake-gcs-server, functions-framework)")
    with LocalStack(state_dir=state_dir) as stack:
        console.print(f"  stack up; settings in {state_dir / 'local.env'}")
        client = stack.storage_client()
        models_bucket = client.bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
        predictions_bucket = client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
        work = state_dir / "demo"
        work.mkdir(parents=True, exist_ok=True)

        _step("Generating a synthetic bilingual marketplace catalogue and training v1")
        training_items = list(catalogue.generate(3000, seed=7))
        datasets.write_jsonl(work / "catalogue.jsonl", training_items)
        trained = model.train(training_items)
        data, metadata = artifact.serialize(trained, extra={"data_sources": [str(work / "catalogue.jsonl")]})
        artifact.write_dir(work / "model-v1", data, metadata)
        m = trained.metrics
        console.print(f"  {metadata['version']}: {trained.rows_used} rows, labels {', '.join(trained.labels)}")
        console.print(f"  held-out: top-1 {m['top1_accuracy']:.3f}, micro F1 {m['micro_f1']:.3f}, macro F1 {m['macro_f1']:.3f}")

        _step("Pushing v1 and promoting it to champion")
        registry.push(models_bucket, data, metadata)
        registry.set_champion(models_bucket, metadata, registry.read_champion(models_bucket), reason="demo: first model")

        _step("Publishing new items to the items topic (google-cloud-pubsub client)")
        new_items = list(catalogue.generate(10, seed=2026, id_prefix="new"))
        truth = {item.id: item.labels for item in new_items}
        public = [{k: v for k, v in item.to_json().items() if k != "labels"} for item in new_items]
        payloads = [json.dumps(item, ensure_ascii=False).encode() for item in public[:6]]
        payloads.append(json.dumps({"items": public[6:]}, ensure_ascii=False).encode())
        payloads.append(b'{"items": [{"title": "an item without an id"}]}')
        publisher = stack.publisher()
        published = publish_items(publisher, publisher.topic_path(stack.project, ITEMS_TOPIC), payloads)
        console.print(f"  {len(payloads)} messages published (6 single items, one batch of 4, one malformed)")

        today = _utc_now()
        wanted = [paths.predictions(today, message_id) for message_id, _ in published[:-1]]
        rejected_name = paths.rejected(today, published[-1][0])
        found = wait_for_objects(predictions_bucket, wanted + [rejected_name])

        table = Table(title="Predictions read back from gs://saikika-predictions/predictions/")
        for column in ("item", "title", "predicted labels", "top scores", "generator's labels"):
            table.add_column(column)
        for name in wanted:
            for line in found[name].splitlines():
                record = json.loads(line)
                top = sorted(record["scores"].items(), key=lambda kv: -kv[1])[:3]
                title = next(item["title"] for item in public if item["id"] == record["id"])
                table.add_row(record["id"], title[:40], ", ".join(record["labels"]) or "—",
                              "  ".join(f"{k} {v:.2f}" for k, v in top), ", ".join(truth[record["id"]]) or "—")
        console.print(table)
        rejected = json.loads(found[rejected_name])
        console.print(f"  malformed message → {rejected_name}: {rejected['errors'][0]['error']}")

        _step("Calling the HTTP endpoint (predict_http) once")
        body = json.dumps({"instances": [{"id": "http-1", "title": "防水 Bluetooth スピーカー 持ち運び便利"}]}).encode()
        request = urllib.request.Request(stack.env["SAIKIKA_PREDICT_URL"], data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        console.print(f"  POST {stack.env['SAIKIKA_PREDICT_URL']} → {response.status}: "
                      f"{answer['predictions'][0]['labels']} (model {answer['model_version']})")

        _step("Shutting down")
    console.print(f"\n[bold green]Demo finished in {time.perf_counter() - started:.0f} s[/]")


def _utc_now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
