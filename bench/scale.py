"""`make bench-scale`: the loop at marketplace scale, measured in one run on this machine → bench/scale.json.

1. History sweep (the emulators of the local stack, the retrain handler driven in-process through a storage client
   that counts its HTTP requests): 1k, 5k and 20k feedback objects of history, compacted by a first run; then a
   tick with nothing new and a run with 10 new feedback objects: seconds and storage requests.
   `detect_cost_ratio` = the nothing-new tick's median time with 20k objects of history ÷ with 1k.
2. Rows sweep: `saikika train` (a process of its own, default settings: streamed above 50,000 rows) on 100k, 300k
   and 1M synthetic marketplace rows (title plus a few hundred characters of description): seconds and peak RSS;
   the in-memory fit on 100k rows for reference. `rss_ratio_1m_vs_100k` compares the streamed runs.
3. Livedoor: top-1 accuracy on `test` of the streaming fit next to the in-memory fit.
4. A 256-label model served by `predict_http` through a hot swap to another 256-label model: peak RSS of the
   function's processes (target: under a 1 GiB instance). The two models' weights are random (what the
   serving memory depends on is their shape: 256 labels × 2^18 float32 weights), built as real model.npz files.
5. The monitoring step, label drift (`drift.update` on the emulators) after 1k and 10k messages of a day.
6. Live quality: a run's `LiveQualityStep` after 1k and 10k feedback rows newer than a v1 champion trained on 20k
   base rows (the retrain handler in-process, as in 1): the step's seconds as a fraction of the run's, and its
   storage requests (none of the base data). `--merge` keeps the other parts' figures already in --out.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "livedoor-news-corpus" / "livedoor.jsonl"
sys.path.insert(0, str(REPO))  # the tests package, for its request counter
sys.path.insert(0, str(REPO / "bench"))

from figures import TARGETS, add_markdown_only, fmt, table, write_markdown  # noqa: E402

from saikika.cloud import drift, gcs, registry  # noqa: E402
from saikika.core import jsonl, objects, rows  # noqa: E402
from saikika.core.drift import METADATA_KEY, LabelCounts  # noqa: E402
from saikika.core.events import ObjectEvent  # noqa: E402
from saikika.core.settings import Settings  # noqa: E402
from saikika.handlers.retrain import Retrainer  # noqa: E402
from saikika.model import artifact, catalogue, evaluation, inference_artifact, training  # noqa: E402
from saikika.tooling.local_stack import FUNCTIONS, LocalStack  # noqa: E402
from saikika.tooling.polling import wait_until  # noqa: E402
from tests.integration.helpers import count_requests, loop_buckets  # noqa: E402


def log(message: str) -> None:
    print(f"[bench-scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- 1. history sweep ---------------------------------------------------------------------------------
def counting_client(stack: LocalStack) -> tuple[object, list[str]]:
    client = stack.storage_client()
    return client, count_requests(client)


def history_point(stack: LocalStack, history: int) -> dict:
    client, calls = counting_client(stack)
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{role}-{suffix}" for role in ("data", "models", "predictions")}
    for name in names.values():
        client.create_bucket(name)
    env = {
        "GOOGLE_CLOUD_PROJECT": stack.project,
        "SAIKIKA_DATA_BUCKET": names["data"],
        "SAIKIKA_MODELS_BUCKET": names["models"],
        "SAIKIKA_PREDICTIONS_BUCKET": names["predictions"],
        "SAIKIKA_RETRAIN_SETTLE_S": "0",
        "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "0",
        "SAIKIKA_TRAINING_LAUNCHER": "local",
    }
    settings = Settings.from_env(env)
    data, models = client.bucket(names["data"]), client.bucket(names["models"])
    items = list(catalogue.generate(history + 10, seed=history))
    day = datetime.now(UTC)

    def feedback(i: int) -> str:
        name = objects.feedback(day, f"{history}{i:07d}")
        data.blob(name).upload_from_string(
            jsonl.dumps([{**items[i].to_json(), rows.EVENT_TIME_FIELD: day.isoformat()}])
        )
        return name

    log(f"history {history}: writing {history} feedback objects")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(feedback, range(history)))
    retrainer = Retrainer(settings, client)
    gcs.create_json(
        models,
        objects.retrain_request("setup", datetime(2026, 1, 1, tzinfo=UTC)),
        {"request": "setup", "force": True},
    )
    began = time.perf_counter()
    first = retrainer.tick("compact the history")
    compaction_run_s = time.perf_counter() - began
    assert first.status == "trained", first

    nothing_new, nothing_new_calls = [], []
    for _ in range(5):
        calls.clear()
        began = time.perf_counter()
        assert retrainer.tick("tick").status == "up-to-date"
        nothing_new.append(time.perf_counter() - began)
        nothing_new_calls.append(len(calls))
    # Ten new feedback objects arrive as a burst: their events are recorded as pending (the settle time not yet
    # passed), then the tick that runs.
    settling = Retrainer(
        Settings.from_env({**env, "SAIKIKA_RETRAIN_SETTLE_S": "3600", "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "3600"}), client
    )
    for i in range(10):
        name = feedback(history + i)
        assert settling.on_object(ObjectEvent(data.name, name, data.get_blob(name).generation)).status == "deferred"
    calls.clear()
    began = time.perf_counter()
    outcomes = [retrainer.tick("tick").status]
    run_s = time.perf_counter() - began
    assert outcomes == ["trained"], outcomes
    data_reads = sum(1 for c in calls if f"/b/{data.name}/" in c or f"/{data.name}/o" in c)
    return {
        "history_objects": history,
        "first_run_compacting_history_s": round(compaction_run_s, 2),
        "nothing_new_s": {"median": statistics.median(nothing_new), "values": [round(v, 4) for v in nothing_new]},
        "nothing_new_storage_requests": statistics.median(nothing_new_calls),
        "ten_new_objects": {
            "seconds": round(run_s, 2),
            "storage_requests": len(calls),
            "data_bucket_requests": data_reads,
            "outcomes": outcomes,
            "rows_trained": first
            and json.loads(
                sorted(models.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX), key=lambda b: b.name)[
                    -1
                ].download_as_bytes()
            )["training_data"].get("rows_newest_per_item"),
        },
    }


# ---- 5. the monitoring step: label drift -------------------------------------------------------------
def write_prediction_objects(bucket, day: datetime, first: int, count: int, labels: list[str]) -> None:
    """`count` event-path predictions objects (one per message, one item each) with their label counts."""

    def one(i: int) -> None:
        chosen = [labels[i % len(labels)]] if i % 7 else []
        line = {"id": f"item-{i}", "labels": chosen, "scores": {}, "model_version": "bench", "message_id": str(i)}
        blob = bucket.blob(objects.predictions(day, f"{i:09d}"))
        blob.metadata = {METADATA_KEY: LabelCounts.of([chosen]).to_metadata()}
        blob.upload_from_string(jsonl.dumps([line]), content_type=jsonl.CONTENT_TYPE)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(first, first + count)))


def drift_point(stack: LocalStack, sizes: list[int], earlier: int) -> dict:
    """`drift.update` after `sizes` messages of a day, with `earlier` messages on the day before already there:
    storage requests and seconds; and reading the day's objects instead of listing them, for comparison."""
    settings, names = loop_buckets(stack, "drift")
    client, calls = counting_client(stack)
    models, predictions = client.bucket(names["models"]), client.bucket(names["predictions"])
    files = training.serialize(training.train(list(catalogue.generate(600, seed=5))))
    registry.push(models, *files)
    registry.promote_by_hand(models, files.metadata, reason="bench")
    labels = files.metadata["labels"]
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    log(f"drift: {earlier} messages on the day before")
    write_prediction_objects(predictions, noon - timedelta(days=1), 0, earlier, labels)
    calls.clear()
    began = time.perf_counter()
    closing = drift.update(settings, client, noon.timestamp())  # the day before, once after it closed (and today)
    closing_point = {"seconds": round(time.perf_counter() - began, 3), "storage_requests": len(calls)}
    assert [d.items for d in closing] == [earlier, 0], closing
    points, written, tick = [], 0, noon.timestamp()
    for size in sizes:
        log(f"drift: {size} messages of the day")
        write_prediction_objects(predictions, noon, earlier + written, size - written, labels)
        written = size
        tick += settings.drift_interval_s
        calls.clear()
        began = time.perf_counter()
        [today] = drift.update(settings, client, tick)
        seconds = time.perf_counter() - began
        assert today.items == size, today
        points.append({"messages": size, "seconds": round(seconds, 3), "storage_requests": len(calls)})
    reading = read_day(predictions, noon, sizes[0])
    return {"earlier_day_messages": earlier, "closing_earlier_day": closing_point, "points": points, **reading}


def read_day(bucket, day: datetime, limit: int) -> dict:
    """What the step would cost if it read the objects: list, then download the first `limit` objects."""
    calls = count_requests(bucket.client)
    began = time.perf_counter()
    blobs = list(bucket.list_blobs(prefix=objects.predictions_day(f"{day:%Y-%m-%d}"), max_results=limit))
    for blob in blobs:
        blob.download_as_bytes()
    return {
        "reading_objects": {
            "messages": len(blobs),
            "seconds": round(time.perf_counter() - began, 3),
            "storage_requests": len(calls),
        }
    }


# ---- 6. the live-quality step's share of a retrain run ---------------------------------------------------
# Feedback arrives as messages of a few confirmations each; a message is one object under training/feedback/.
FEEDBACK_ROWS_PER_MESSAGE = 10


class StepLines(logging.Handler):
    """The fields of the retrain logger's `live quality` lines, as the step emits them in this process."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.fields: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "live quality":
            self.fields.append(dict(record.fields))


class CountedStep:
    """Wraps a run's `LiveQualityStep`: the storage requests made while it runs (a run is one thread)."""

    def __init__(self, step, calls: list[str]):
        self.step, self.calls, self.requests = step, calls, []

    def __call__(self, run, snap):
        first = len(self.calls)
        try:
            return self.step(run, snap)
        finally:
            self.requests = self.calls[first:]


def write_feedback(data, count: int, seed: int) -> None:
    """`count` feedback rows newer than anything trained so far, FEEDBACK_ROWS_PER_MESSAGE to a message object."""
    items = list(catalogue.generate(count, seed=seed, id_prefix="feedback"))

    def message(first: int) -> None:
        now = datetime.now(UTC)
        batch = items[first : first + FEEDBACK_ROWS_PER_MESSAGE]
        lines = [{**item.to_json(), rows.EVENT_TIME_FIELD: now.isoformat()} for item in batch]
        data.blob(objects.feedback(now, f"m{first:07d}")).upload_from_string(jsonl.dumps(lines))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(message, range(0, count, FEEDBACK_ROWS_PER_MESSAGE)))


def request_of(call: str, names: dict) -> str:
    """ "GET data: compacted/dt=…/….jsonl": a counted request by its bucket's role and object name."""
    method, url = call.split(" ", 1)
    bucket, _, name = url.split("/b/", 1)[1].partition("/o")
    role = next((role for role, n in names.items() if n == bucket), bucket)
    return f"{method} {role}: {urllib.parse.unquote(name.lstrip('/')) or '(the bucket)'}"


def live_quality_point(stack: LocalStack, backlog: int, base: int) -> dict:
    """A v1 champion trained by a run on `base` catalogue rows, then `backlog` feedback rows newer than its
    training and a run on them: the step's seconds (its `live quality` line) against the run's (its record), and
    the storage requests the step made, none of them of the base data."""
    settings, names = loop_buckets(stack, "quality")
    client, calls = counting_client(stack)
    data, models = client.bucket(names["data"]), client.bucket(names["models"])
    base_object = "training/base/catalogue.jsonl"
    data.blob(base_object).upload_from_string(rows.dumps(catalogue.generate(base, seed=11)))
    retrainer = Retrainer(settings, client)

    def forced_run(request: str):
        gcs.create_json(
            models, objects.retrain_request(request, datetime.now(UTC)), {"request": request, "force": True}
        )
        return retrainer.tick(request)

    log(f"live quality {backlog}: v1 on {base} base rows, promoted")
    v1 = forced_run("v1")
    assert v1.status == "trained", v1
    registry.promote_by_hand(models, registry.read_metadata(models, v1.version), reason="bench")
    log(f"live quality {backlog}: {backlog} feedback rows newer than v1's training, then a run")
    write_feedback(data, backlog, seed=backlog)
    step = retrainer.steps._live_quality = CountedStep(retrainer.steps._live_quality, calls)
    lines, logger = StepLines(), logging.getLogger("saikika.retrain")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    calls.clear()
    try:
        result = forced_run("feedback backlog")
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert result.status == "trained", result
    [line] = lines.fields
    assert line["rows"] == backlog and line["champion_version"] == v1.version, line
    runs = sorted(models.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX), key=lambda b: b.name)
    run_seconds = json.loads(runs[-1].download_as_bytes())["seconds"]
    return {
        "base_rows": base,
        "feedback_rows": backlog,
        "feedback_objects": -(-backlog // FEEDBACK_ROWS_PER_MESSAGE),
        "step_seconds": line["seconds"],
        "run_seconds": run_seconds,
        "fraction_of_run": round(line["seconds"] / run_seconds, 4),
        "step_storage_requests": len(step.requests),
        "step_data_bucket_requests": sum(1 for c in step.requests if f"/b/{data.name}/o" in c),
        "step_reads_base_data": any(urllib.parse.quote(base_object, safe="") in c for c in step.requests),
        "run_storage_requests": len(calls),
        "step_requests": [request_of(call, names) for call in step.requests],
    }


# ---- 2. rows sweep ------------------------------------------------------------------------------------
def marketplace_rows(count: int, path: Path) -> int:
    """Synthetic marketplace rows: a catalogue item's title and a description of a few hundred characters."""
    rng = random.Random(count)
    pool = list(catalogue.generate(20_000, seed=3))
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            item = pool[n % len(pool)]
            extra = " ".join(pool[rng.randrange(len(pool))].description for _ in range(4))
            handle.write(
                json.dumps(
                    {
                        "id": f"m{n}",
                        "title": item.title,
                        "description": f"{item.description} {extra}",
                        "tags": list(item.tags),
                        "labels": list(item.labels),
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
            written += 1
    return path.stat().st_size


def train_process(data: Path, out: Path, *extra: str) -> dict:
    saikika = Path(sys.executable).with_name("saikika")
    # A process of its own measures its one child: RUSAGE_CHILDREN's peak is then that run's alone.
    probe = (
        "import json, resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(json.dumps({'rc': r.returncode, 'seconds': time.perf_counter() - t, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 'err': r.stderr[-2000:]}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(saikika), "train", "--data", str(data), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if figures["rc"] != 0:
        raise SystemExit(figures["err"])
    metadata = json.loads((out / "metadata.json").read_text())
    return {
        "seconds": round(figures["seconds"], 1),
        "peak_rss_mb": round(figures["peak_rss_mb"], 1),
        "mode": metadata.get("training_mode"),
        "rows_used": metadata["rows_used"],
        "tuning_micro_f1": round(metadata["metrics"]["micro_f1"], 4),
    }


def rows_sweep(sizes: list[int], work: Path) -> dict:
    out: dict = {}
    for size in sizes:
        path = work / f"rows-{size}.jsonl"
        log(f"rows {size}: generating")
        megabytes = marketplace_rows(size, path) / 2**20
        log(f"rows {size}: saikika train ({megabytes:.0f} MB)")
        out[str(size)] = {"input_mb": round(megabytes, 1), "streamed": train_process(path, work / f"model-{size}")}
        if size == min(sizes):
            log(f"rows {size}: saikika train in memory, for reference")
            out[str(size)]["in_memory"] = train_process(path, work / f"model-{size}-mem", "--in-memory-rows", str(size))
        path.unlink()
    return out


# ---- 3. livedoor --------------------------------------------------------------------------------------
def livedoor_quality() -> dict | None:
    if not CORPUS.exists():
        return None
    from tests.livedoor import livedoor_item

    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    train = [livedoor_item(r) for r in records if r["split_kikuta"] == "train"]
    test = [livedoor_item(r) for r in records if r["split_kikuta"] == "test"]

    def accuracy(trained) -> float:
        files = training.serialize(trained)
        return evaluation.evaluate(artifact.load_inference(files.inference, files.metadata), test)["top1_accuracy"]

    in_memory = accuracy(training.train(train))
    streamed = accuracy(training.train_streaming(lambda: (train[i : i + 5000] for i in range(0, len(train), 5000))))
    return {
        "in_memory_top1": round(in_memory, 4),
        "streamed_top1": round(streamed, 4),
        "difference_points": round(100 * (streamed - in_memory), 2),
    }


# ---- 4. 256 labels through a hot swap -----------------------------------------------------------------
def wide_model(labels: int, seed: int) -> artifact.ModelFiles:
    rng = np.random.default_rng(seed)
    bits = 18
    buffer = io.BytesIO()
    np.savez(
        buffer,
        feature_rows=np.column_stack([rng.normal(0, 2.5, (1 << bits, labels)), rng.uniform(1, 10, 1 << bits)]).astype(
            np.float32
        ),
        intercept=rng.normal(-3, 1, labels),
        ngram_range=np.array([1, 3]),
        bits=np.array(bits),
        lowercase=np.array(True),
    )
    arrays = buffer.getvalue()
    names = [f"label-{j:03d}" for j in range(labels)]
    placeholder = b"not loaded by predictors"
    metadata = {
        "version": f"wide-{seed}-{uuid.uuid4().hex[:6]}",
        "sha256": artifact.sha256_hex(placeholder),
        "labels": names,
        "thresholds": {n: 0.5 for n in names},
        "inference": {
            "file": objects.INFERENCE_FILE,
            "format": inference_artifact.FORMAT,
            "sha256": artifact.sha256_hex(arrays),
        },
    }
    return artifact.ModelFiles(placeholder, metadata, arrays)


def process_tree_peak_mb(root: int) -> float:
    """The largest VmHWM (peak resident set) among a process and its descendants."""
    peak = 0.0
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            peak = max(
                peak, next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
            )
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        pending += [int(c) for c in children]
    return peak


def hot_swap_peak(work: Path, labels: int = 256) -> dict:
    spec = tuple(s for s in FUNCTIONS if s.name == "predict_http")
    stack = LocalStack(state_dir=work / "wide", functions=spec, extra_env={"SAIKIKA_MODEL_TTL_S": "1"}).start()
    try:
        models = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
        first, second = wide_model(labels, 1), wide_model(labels, 2)
        url = stack.env["SAIKIKA_PREDICT_URL"]
        body = json.dumps(
            {
                "instances": [
                    {"id": str(i), "title": f"防水 スピーカー {i}", "description": "wireless " * 40} for i in range(100)
                ]
            }
        ).encode()

        def served_version() -> str:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())["model_version"]

        registry.push(models, *first)
        registry.set_champion(models, first.metadata, None, reason="bench")
        wait_until("the first wide model served", lambda: served_version() == first.metadata["version"], timeout_s=120)
        pid = dict(stack._processes)["function-predict_http"].pid
        before = process_tree_peak_mb(pid)
        registry.push(models, *second)
        registry.set_champion(models, second.metadata, registry.read_champion(models), reason="bench")
        wait_until(
            "the second wide model served", lambda: served_version() == second.metadata["version"], timeout_s=120
        )
        for _ in range(20):
            served_version()
        return {
            "labels": labels,
            "model_npz_mb": round(len(first.inference) / 2**20, 1),
            "peak_rss_mb_serving_one": round(before, 1),
            "peak_rss_mb_through_hot_swap": round(process_tree_peak_mb(pid), 1),
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "scale.json")
    parser.add_argument("--history", default="1000,5000,20000")
    parser.add_argument("--rows", default="100000,300000,1000000")
    parser.add_argument("--drift", default="1000,10000", help="messages of a day the drift step is measured after")
    parser.add_argument("--drift-earlier", type=int, default=10000, help="messages on the day before")
    parser.add_argument(
        "--live-quality", default="1000,10000", help="feedback rows since the champion's training, one run each"
    )
    parser.add_argument("--live-quality-base", type=int, default=20000, help="base catalogue rows under the feedback")
    parser.add_argument(
        "--skip", default="", help="comma list of parts to skip: history,rows,livedoor,labels,drift,live_quality"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other parts' figures already in --out: the parts run now replace theirs, each with its "
        "measured_at, and the ratios are computed again",
    )
    add_markdown_only(parser)
    args = parser.parse_args()
    if args.markdown_only:
        print(write_markdown(args.out, markdown))
        return
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"created_at": datetime.now(UTC).isoformat(), "cpus": os.cpu_count()}
    earlier = json.loads(args.out.read_text()) if args.merge else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "history" not in skip:
            stack = LocalStack(state_dir=work / "history", functions=()).start()
            try:
                results["history"] = [history_point(stack, int(n)) for n in args.history.split(",")]
            finally:
                stack.stop()
        if "rows" not in skip:
            results["rows"] = rows_sweep([int(n) for n in args.rows.split(",")], work)
        if "livedoor" not in skip:
            log("livedoor: streaming vs in-memory")
            results["livedoor"] = livedoor_quality()
        if "labels" not in skip:
            log("256 labels through a hot swap")
            results["wide_model"] = hot_swap_peak(work)
        if "drift" not in skip:
            stack = LocalStack(state_dir=work / "drift", functions=()).start()
            try:
                sizes = [int(n) for n in args.drift.split(",")]
                results["drift"] = drift_point(stack, sizes, args.drift_earlier)
            finally:
                stack.stop()
        if "live_quality" not in skip:
            stack = LocalStack(state_dir=work / "live-quality", functions=()).start()
            try:
                points = [
                    live_quality_point(stack, int(n), args.live_quality_base) for n in args.live_quality.split(",")
                ]
                results["live_quality"] = {"points": points}
            finally:
                stack.stop()
    if earlier:
        measured = {key: value for key, value in results.items() if key not in ("created_at", "cpus")}
        results = {
            **earlier,
            **{key: {**value, "measured_at": results["created_at"]} for key, value in measured.items()},
        }
    ratios = {}
    if results.get("history"):
        by = {h["history_objects"]: h for h in results["history"]}
        ratios["detect_cost_ratio"] = round(
            by[max(by)]["nothing_new_s"]["median"] / by[min(by)]["nothing_new_s"]["median"], 3
        )
    if results.get("rows"):
        sizes = sorted(results["rows"], key=int)
        ratios["rss_ratio_1m_vs_100k"] = round(
            results["rows"][sizes[-1]]["streamed"]["peak_rss_mb"]
            / results["rows"][sizes[0]]["streamed"]["peak_rss_mb"],
            3,
        )
        ratios["peak_rss_mb_largest"] = results["rows"][sizes[-1]]["streamed"]["peak_rss_mb"]
    if results.get("drift"):
        first, last = results["drift"]["points"][0], results["drift"]["points"][-1]
        ratios["drift_requests_ratio"] = round(last["storage_requests"] / first["storage_requests"], 3)
        ratios["drift_seconds_ratio"] = round(last["seconds"] / first["seconds"], 3)
        ratios["drift_work_ratio"] = round(last["messages"] / first["messages"], 3)
    if results.get("live_quality"):
        points = results["live_quality"]["points"]
        for p in points:
            ratios[f"live_quality_fraction_{p['feedback_rows']}"] = p["fraction_of_run"]
        first, last = points[0], points[-1]
        ratios["live_quality_requests_ratio"] = round(last["step_storage_requests"] / first["step_storage_requests"], 3)
        ratios["live_quality_work_ratio"] = round(last["feedback_rows"] / first["feedback_rows"], 3)
    results["ratios"] = ratios
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_markdown(args.out, markdown)
    print(json.dumps(ratios, indent=2))


def markdown(r: dict) -> list[str]:
    lines = [
        f"# saikika at marketplace scale ({r['created_at']})",
        "",
        "Written by `make bench-scale` (`bench/scale.py`) from `bench/scale.json`; `python bench/scale.py",
        "--markdown-only` rewrites it from that file. How it is measured: `docs/benchmarks.md`.",
        f"Machine: {r['cpus']} CPUs.",
    ]
    if r.get("history"):
        lines += ["", "## History sweep (the retrain handler on the emulators)", ""]
        lines += table(
            (
                "feedback objects of history",
                "first run, compacting them: s",
                "nothing-new tick: median ms / storage requests",
                "run after 10 new objects: s / storage requests (data bucket) / rows trained",
            ),
            (
                (
                    fmt(h["history_objects"]),
                    fmt(h["first_run_compacting_history_s"]),
                    f"{h['nothing_new_s']['median'] * 1000:.2f} / {h['nothing_new_storage_requests']}",
                    f"{fmt(h['ten_new_objects']['seconds'])} / {h['ten_new_objects']['storage_requests']} "
                    f"({h['ten_new_objects']['data_bucket_requests']}) / {h['ten_new_objects']['rows_trained']}",
                )
                for h in r["history"]
            ),
        )
    if r.get("rows"):
        lines += ["", "## Rows sweep (`saikika train` in a process of its own)", ""]
        lines += table(
            ("rows", "input MB", "fit", "s", "peak RSS MB", "tuning micro F1"),
            (
                (
                    size,
                    fmt(by_mode["input_mb"]),
                    run["mode"],
                    fmt(run["seconds"]),
                    fmt(run["peak_rss_mb"]),
                    fmt(run["tuning_micro_f1"]),
                )
                for size, by_mode in r["rows"].items()
                for run in (by_mode[k] for k in ("streamed", "in_memory") if k in by_mode)
            ),
        )
    if r.get("livedoor"):
        d = r["livedoor"]
        lines += ["", "## Livedoor `test` top-1, streamed against in memory", ""]
        lines += table(
            ("streamed", "in memory", "difference, points"),
            [(fmt(d["streamed_top1"]), fmt(d["in_memory_top1"]), f"{d['difference_points']:+.2f}")],
        )
    if r.get("wide_model"):
        w = r["wide_model"]
        lines += ["", f"## `predict_http` serving {w['labels']} labels through a hot swap", ""]
        lines += table(
            ("model.npz MB", "peak RSS MB serving one", "peak RSS MB through the hot swap"),
            [(fmt(w["model_npz_mb"]), fmt(w["peak_rss_mb_serving_one"]), fmt(w["peak_rss_mb_through_hot_swap"]))],
        )
    if r.get("drift"):
        d = r["drift"]
        lines += ["", "## The monitoring step: label drift (`drift.update` on the emulators)", ""]
        when = f" (measured {d['measured_at']}, apart from the other parts)" if d.get("measured_at") else ""
        lines += [f"With {fmt(d['earlier_day_messages'])} messages already on the day before{when}.", ""]
        lines += table(
            ("after", "s", "storage requests"),
            [
                (
                    "the day before, once after it closed",
                    fmt(d["closing_earlier_day"]["seconds"]),
                    fmt(d["closing_earlier_day"]["storage_requests"]),
                ),
                *(
                    (f"{fmt(p['messages'])} messages of the day", fmt(p["seconds"]), fmt(p["storage_requests"]))
                    for p in d["points"]
                ),
                (
                    f"reading {fmt(d['reading_objects']['messages'])} objects instead of listing them",
                    fmt(d["reading_objects"]["seconds"]),
                    fmt(d["reading_objects"]["storage_requests"]),
                ),
            ],
        )
    if r.get("live_quality"):
        q = r["live_quality"]
        lines += ["", "## Live quality: the step's share of a retrain run (the retrain handler on the emulators)", ""]
        when = f" (measured {q['measured_at']}, apart from the other parts)" if q.get("measured_at") else ""
        base = fmt(q["points"][0]["base_rows"])
        lines += [f"A v1 champion trained on {base} base catalogue rows, then a run on the feedback since{when}.", ""]
        lines += table(
            (
                "feedback rows (objects) since v1",
                "step s",
                "run s",
                "step ÷ run",
                "step storage requests (data bucket)",
                "step reads base data",
                "run storage requests",
            ),
            (
                (
                    f"{fmt(p['feedback_rows'])} ({fmt(p['feedback_objects'])})",
                    fmt(p["step_seconds"]),
                    fmt(p["run_seconds"]),
                    fmt(p["fraction_of_run"]),
                    f"{p['step_storage_requests']} ({p['step_data_bucket_requests']})",
                    "yes" if p["step_reads_base_data"] else "no",
                    fmt(p["run_storage_requests"]),
                )
                for p in q["points"]
            ),
        )
    lines += ["", "## Ratios", ""]
    lines += table(("ratio", "value", "target"), ((k, fmt(v), TARGETS.get(k, "")) for k, v in r["ratios"].items()))
    return lines


if __name__ == "__main__":
    main()
