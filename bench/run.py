"""`make bench`: saikika's serving and training figures, side by side with a naive function and
MLServer, all measured in one run on this machine. Writes bench/results.json and bench/results.md.

Ratios are what to compare; absolute times drift from run to run on shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "livedoor-news-corpus" / "livedoor.jsonl"
# `make word-vectors`: with it, the same figures are also measured for a model trained with title word vectors.
WORD_VECTORS = REPO / ".cache" / "word-vectors" / "ja-ginza-5.3.0.npz"
sys.path.insert(0, str(REPO / "bench"))

from figures import TARGETS, add_markdown_only, fmt, table, write_markdown  # noqa: E402

from saikika.cloud import registry  # noqa: E402
from saikika.core import objects  # noqa: E402
from saikika.core.items import Item  # noqa: E402
from saikika.model import artifact, catalogue, pipeline_file, training  # noqa: E402
from saikika.model.label_model import LabelModel  # noqa: E402
from saikika.model.word_vectors import WordVectors  # noqa: E402
from saikika.tooling.local_stack import FUNCTIONS, LocalStack  # noqa: E402
from saikika.tooling.ports import free_port  # noqa: E402


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "runs": len(ordered),
        "values": [round(v, 6) for v in ordered],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- data ----------------------------------------------------------------------------------------
def load_items() -> tuple[list[Item], list[Item], str]:
    if CORPUS.exists():
        records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]

        def item(r):
            return Item(
                id=r["id"],
                title=r["title"],
                description=r["text"][len(r["title"]) :].strip(),
                labels=tuple(r["labels"]),
            )

        train = [item(r) for r in records if r["split_kikuta"] != "test"]
        test = [item(r) for r in records if r["split_kikuta"] == "test"]
        return train, test, f"livedoor news corpus ({CORPUS.name}), title + description as they are"
    items = list(catalogue.generate(4000, seed=7))
    return items[:3000], items[3000:], "synthetic catalogue (saikika.catalogue), ../shared/data absent"


def public(item: Item) -> dict:
    return {"id": item.id, "title": item.title, "description": item.description, "tags": list(item.tags)}


# ---- in-process ceiling ------------------------------------------------------------------------------
def ceiling_rate(served, items: list[Item]) -> float:
    batches = [items[i : i + 100] for i in range(0, len(items) - 99, 100)][:15]
    began = time.perf_counter()
    for batch in batches:
        served.predict(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - began)


def ceiling(served, items: list[Item], repeats: int, rates: list[float] | None = None) -> dict:
    rates = list(rates) if rates else [ceiling_rate(served, items) for _ in range(repeats)]
    singles = []
    for item in items[:300]:
        began = time.perf_counter()
        served.predict([item])
        singles.append(time.perf_counter() - began)
    return {
        "items_per_s_100": summary(rates),
        "single_p50_ms": statistics.median(singles) * 1000,
        "single_p99_ms": percentile(singles, 0.99) * 1000,
    }


def sklearn_pipeline(train: list[Item], labels: list[str]):
    """scikit-learn's own pipeline for the same model: HashingVectorizer (char n-grams, saikika's range and size) → TfidfTransformer
    (sublinear) → one-vs-rest SGD (log loss) with saikika's classifier settings (averaged, the same fixed number of
    epochs, the same alpha) and scikit-learn's defaults otherwise (one-vs-rest on one core), fitted once on the same
    rows. Returns it and the fit's seconds."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import SGDClassifier
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    from saikika.core.metrics import binarize

    config = training.DEFAULT_CONFIG
    pipeline = make_pipeline(
        HashingVectorizer(
            analyzer="char", ngram_range=config.ngram_range, n_features=2**config.bits, alternate_sign=False, norm=None
        ),
        TfidfTransformer(sublinear_tf=True),
        OneVsRestClassifier(
            SGDClassifier(
                loss="log_loss",
                alpha=config.alpha,
                average=True,
                max_iter=training.stream_epochs(len(train)),
                tol=None,
                random_state=0,
            )
        ),
    )
    began = time.perf_counter()
    pipeline.fit([item.text() for item in train], binarize(train, labels))
    return pipeline, time.perf_counter() - began


def paired_ceilings(ours: LabelModel, theirs: LabelModel, items: list[Item], repeats: int) -> dict:
    """Ours and scikit-learn's pipeline on the same 100-item batches and single items, alternating run by run.

    Single items are timed in alternating blocks of `SINGLE_BLOCK` calls (each model in its steady state, as a
    process serving consecutive requests is), and also alternating call by call (`single_interleaved_*`: each
    call then starts with caches the other model has just filled, which costs the model with the larger
    working set most: saikika's 10 MB of weights gathered at random)."""
    rates: dict[str, list[float]] = {"saikika": [], "sklearn": []}
    singles: dict[str, list[float]] = {"saikika": [], "sklearn": []}
    interleaved: dict[str, list[float]] = {"saikika": [], "sklearn": []}
    models = (("saikika", ours), ("sklearn", theirs))
    for _ in range(repeats):
        for name, model in models:
            rates[name].append(ceiling_rate(model, items))
    for start in range(0, 300, SINGLE_BLOCK):
        for name, model in models:
            for item in items[start : start + SINGLE_BLOCK]:
                began = time.perf_counter()
                model.predict([item])
                singles[name].append(time.perf_counter() - began)
    for item in items[:300]:
        for name, model in models:
            began = time.perf_counter()
            model.predict([item])
            interleaved[name].append(time.perf_counter() - began)
    return {
        name: {
            "items_per_s_100": summary(rates[name]),
            "single_p50_ms": statistics.median(singles[name]) * 1000,
            "single_p99_ms": percentile(singles[name], 0.99) * 1000,
            "single_interleaved_p50_ms": statistics.median(interleaved[name]) * 1000,
        }
        for name in rates
    }


SINGLE_BLOCK = 50


# ---- HTTP through the load generator -------------------------------------------------------------------
def loadgen(url: str, body: bytes, concurrency: int, requests: int) -> dict:
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as handle:
        handle.write(body)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "loadgen.py"),
            "--url",
            url,
            "--body",
            handle.name,
            "--concurrency",
            str(concurrency),
            "--requests",
            str(requests),
            "--reconnect-every",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    os.unlink(handle.name)
    return json.loads(result.stdout)


def http_batch_rate(url: str, body: bytes, concurrency: int) -> float:
    # At concurrency 8, enough requests that every connection is re-opened several times (loadgen.py).
    run = loadgen(url, body, concurrency, 40 if concurrency == 1 else 120)
    assert not run["failures"], run["failures"][:5]
    return 100 * len(run["latencies_s"]) / run["wall_s"]


def http_figures(url: str, items: list[Item], body_for, repeats: int, interleave_with=None) -> dict:
    """Items/s for 100-item requests and single-item latencies, at concurrency 1 and 8.

    `interleave_with`, a callable, runs before each concurrency-1 batch run (the in-process ceiling), so
    the two figures whose ratio is reported see the same machine state; its results are returned too.
    """
    batch = body_for(items[:100])
    single = body_for(items[:1])
    out: dict = {"interleaved": []}
    for concurrency in (1, 8):
        rates = []
        for _ in range(repeats):
            if interleave_with is not None and concurrency == 1:
                out["interleaved"].append(interleave_with())
            rates.append(http_batch_rate(url, batch, concurrency))
        out[f"items_per_s_100_c{concurrency}"] = summary(rates)
        p50s, p99s = [], []
        for _ in range(repeats):
            run = loadgen(url, single, concurrency, 400)
            assert not run["failures"], run["failures"][:5]
            p50s.append(percentile(run["latencies_s"], 0.5) * 1000)
            p99s.append(percentile(run["latencies_s"], 0.99) * 1000)
        out[f"single_p50_ms_c{concurrency}"] = summary(p50s)
        out[f"single_p99_ms_c{concurrency}"] = summary(p99s)
    return out


def saikika_body(items: list[Item]) -> bytes:
    return json.dumps({"instances": [public(i) for i in items]}, ensure_ascii=False).encode()


# ---- Pub/Sub end to end ------------------------------------------------------------------------------------
def pubsub_figures(stack: LocalStack, items: list[Item], repeats: int, messages: int = 100) -> dict:
    # 100 messages of 100 items: seconds of work at the ceiling, so a run measures throughput, not the latency
    # of the first push and the last poll.
    publisher = stack.publisher()
    bucket = stack.storage_client().bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])
    topic = publisher.topic_path(stack.project, "items")
    rates = []
    for run in range(repeats):
        payloads = [
            json.dumps(
                {"items": [{**public(i), "id": f"r{run}-m{m}-{i.id}"} for i in items[m * 100 % len(items) :][:100]]},
                ensure_ascii=False,
            ).encode()
            for m in range(messages)
        ]
        began = time.perf_counter()
        ids = [f.result(timeout=60) for f in [publisher.publish(topic, p) for p in payloads]]
        today = datetime.now(UTC)
        wanted = {objects.predictions(today, message_id) for message_id in ids}
        while wanted:
            present = {b.name for b in bucket.list_blobs(prefix=f"predictions/dt={today:%Y-%m-%d}/")}
            wanted -= present
            if time.perf_counter() - began > 300:
                raise TimeoutError(f"{len(wanted)} predictions objects missing")
            time.sleep(0.05)
        rates.append(100 * messages / (time.perf_counter() - began))
    return {"items_per_s_100": summary(rates), "messages_per_run": messages}


# ---- cold start ----------------------------------------------------------------------------------------------
def cold_start(command: list[str], cwd: Path, env: dict, url_port: int, body: bytes, timeout_s: float = 120) -> float:
    began = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(url_port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - began < timeout_s:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{url_port}/", data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    if response.status == 200:
                        return time.perf_counter() - began
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.01)
        raise TimeoutError("no successful prediction")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cold_starts(stack: LocalStack, files, items: list[Item], rounds: int) -> dict:
    models = stack.env["SAIKIKA_MODELS_BUCKET"]
    base_env = {k: v for k, v in os.environ.items()} | {
        k: stack.env[k]
        for k in (
            "GOOGLE_CLOUD_PROJECT",
            "STORAGE_EMULATOR_HOST",
            "SAIKIKA_DATA_BUCKET",
            "SAIKIKA_MODELS_BUCKET",
            "SAIKIKA_PREDICTIONS_BUCKET",
        )
    }
    naive_env = base_env | {
        "NAIVE_MODEL_BUCKET": models,
        "NAIVE_MODEL_OBJECT": objects.version_prefix(files.metadata["version"]) + objects.MODEL_FILE,
    }
    framework = [sys.executable, "-m", "functions_framework", "--signature-type", "http"]
    body = saikika_body(items[:1])
    saikika_runs, naive_runs = [], []
    for _ in range(rounds):  # alternating, so drift hits both alike
        saikika_runs.append(
            cold_start(
                [*framework, "--target", "predict_http", "--source", "main.py"],
                REPO / "functions" / "predict_http",
                base_env,
                free_port(),
                body,
            )
        )
        naive_runs.append(
            cold_start(
                [*framework, "--target", "predict", "--source", "main.py"],
                REPO / "bench" / "naive",
                naive_env,
                free_port(),
                body,
            )
        )
    return {"saikika_s": summary(saikika_runs), "naive_s": summary(naive_runs)}


# ---- memory -----------------------------------------------------------------------------------------------------
def serving_peak_rss_mb(stack: LocalStack, items: list[Item]) -> float:
    loadgen(stack.env["SAIKIKA_PREDICT_URL"], saikika_body(items[:100]), 4, 100)  # 10,000 predictions
    root = dict(stack._processes)["function-predict_http"].pid
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields["PPid"]) == root or int(fields["Pid"]) == root:
            peak = max(peak, int(fields.get("VmHWM", "0 kB").split()[0]))
    return peak / 1024  # the largest process: one worker holds one model


# ---- training -----------------------------------------------------------------------------------------------------
TRAIN_SNIPPET = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
from saikika.cloud import data_files
from saikika.core.metrics import binarize
from saikika.model import training
rows = data_files.load_rows([sys.argv[1]]).items
labels = sorted({label for item in rows for label in item.labels})
began = time.perf_counter()
if sys.argv[2] == "saikika-run":  # what `saikika train` does: two fits (tuning split, then all rows), thresholds
    training.train(rows)
elif sys.argv[2] == "saikika-fit":  # one fit of saikika's pipeline, like for like with scikit-learn's
    # Counted as `train` counts.
    config = training.DEFAULT_CONFIG
    counts, dense = training._featurise(config.featuriser(), config.word_features(), [item.text() for item in rows], None)
    training._fit(counts, dense, binarize(rows, labels), config.alpha)
else:  # scikit-learn's own pipeline
    from run import sklearn_pipeline
    sklearn_pipeline(rows, labels)
seconds = time.perf_counter() - began
# The process's own high-water mark: wait4's ru_maxrss would also count the benchmark's memory before exec.
peak_kb = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": seconds, "rows": len(rows), "peak_rss_mb": peak_kb / 1024}))
"""
TRAINING_MODES = ("saikika-run", "saikika-fit", "sklearn-fit")


def training_figures(train: list[Item], sizes: tuple[int, ...], rounds: int = 3) -> dict:
    """Each mode in a process of its own, `rounds` times in alternation (drift and neighbours hit all modes
    alike); the median seconds and the largest peak RSS of each."""
    out = {}
    padding = catalogue.generate(max(sizes), seed=99)
    pool = list(train)
    for size in sizes:
        while len(pool) < size:
            pool.append(next(padding))
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
            for item in pool[:size]:
                handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
        runs: dict[str, list[dict]] = {mode: [] for mode in TRAINING_MODES}
        for _ in range(rounds):
            for mode in TRAINING_MODES:
                result = json.loads(
                    subprocess.run(
                        [sys.executable, "-c", TRAIN_SNIPPET, handle.name, mode, str(REPO / "bench")],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                runs[mode].append(result)
                log(f"{mode}: {size} rows in {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB")
        out[str(size)] = {"real_rows": min(size, len(train))}
        for mode, results in runs.items():
            seconds = summary([result["seconds"] for result in results])
            out[str(size)][mode] = {
                "seconds": seconds["median"],
                "seconds_runs": seconds["values"],
                "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
            }
        os.unlink(handle.name)
    return out


def load_times(files, repeats: int = 5) -> dict:
    skops_runs, arrays_runs = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        pipeline_file.load(files.model, files.metadata)
        skops_runs.append(time.perf_counter() - began)
        began = time.perf_counter()
        artifact.load_inference(files.inference, files.metadata)
        arrays_runs.append(time.perf_counter() - began)
    return {
        "model_skops_mb": len(files.model) / 1e6,
        "model_npz_mb": len(files.inference) / 1e6,
        "load_skops_s": summary(skops_runs),
        "load_inference_s": summary(arrays_runs),
    }


# ---- main --------------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-word-vectors", action="store_true")
    parser.add_argument("--only-training", action="store_true", help="just the training figures, printed")
    add_markdown_only(parser)
    args = parser.parse_args()
    if args.markdown_only:
        log(f"wrote {write_markdown(args.out, markdown)}")
        return

    train, test, data_source = load_items()
    log(f"data: {data_source}: {len(train)} train, {len(test)} test items")
    if args.only_training:
        print(json.dumps(training_figures(train, (1_000, 10_000, 100_000)), indent=2))
        return
    began = time.perf_counter()
    trained = training.train(train)
    train_seconds = time.perf_counter() - began
    files = training.serialize(trained)
    serving = artifact.load_inference(files.inference, files.metadata)

    results: dict = {
        "created_at": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "library_versions": training.library_versions(),
        "data": {"source": data_source, "train_items": len(train), "test_items": len(test)},
        "model": {"version": files.metadata["version"], "training_seconds": train_seconds, **load_times(files)},
    }
    log("in-process ceiling against scikit-learn's own pipeline")
    reference, reference_seconds = sklearn_pipeline(train, list(serving.labels))
    results["sklearn"] = {"training_seconds": reference_seconds}
    sklearn_model = LabelModel("sklearn", serving.labels, serving.thresholds, reference.predict_proba)
    results["ceilings_vs_sklearn"] = paired_ceilings(serving, sklearn_model, test, args.repeats)
    files_words = None
    if WORD_VECTORS.exists() and not args.skip_word_vectors:
        log("title word vectors: a model trained with them on the same items, paired with scikit-learn's pipeline")
        config = training.TrainingConfig.with_word_vectors(WordVectors.from_bytes(WORD_VECTORS.read_bytes()))
        files_words = training.serialize(training.train(train, config=config))
        serving_words = artifact.load_inference(files_words.inference, files_words.metadata)
        results["word_vectors"] = {
            "model": load_times(files_words),
            "ceilings_vs_sklearn": paired_ceilings(serving_words, sklearn_model, test, args.repeats),
            "titles": titles_ceilings(train, test, config, args.repeats),
        }

    specs = tuple(s for s in FUNCTIONS if s.name in ("predict", "predict_http"))
    with LocalStack(
        state_dir=Path(tempfile.mkdtemp(prefix="saikika-bench-")),
        functions=specs,
        # One gunicorn worker per core, as terraform sets WORKERS from a function's CPUs; MLServer
        # likewise runs its HTTP server and its inference worker as two processes.
        extra_env={"SAIKIKA_LOG_LEVEL": "WARNING", "WORKERS": str(os.cpu_count() or 1)},
    ) as stack:
        bucket = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
        registry.push(bucket, *files)
        registry.set_champion(bucket, files.metadata, None, reason="bench")
        log("http, interleaved with the in-process ceiling")
        results["http"] = http_figures(
            stack.env["SAIKIKA_PREDICT_URL"],
            test,
            saikika_body,
            args.repeats,
            interleave_with=lambda: ceiling_rate(serving, test),
        )
        results["ceiling"] = ceiling(serving, test, args.repeats, rates=results["http"].pop("interleaved"))
        log("pubsub")
        results["pubsub"] = pubsub_figures(stack, test, args.repeats)
        log("memory")
        results["memory"] = {"serving_peak_rss_mb_after_10k_predictions": serving_peak_rss_mb(stack, test)}
        log("cold start")
        results["cold_start"] = cold_starts(stack, files, test, rounds=max(3, args.repeats))
        if files_words is not None:
            log("cold start, the model with title word vectors as champion")
            registry.push(bucket, *files_words)
            registry.set_champion(bucket, files_words.metadata, registry.read_champion(bucket), reason="bench")
            results["word_vectors"]["cold_start"] = cold_starts(stack, files, test, rounds=max(3, args.repeats))

    if not args.skip_peer:
        from peer_mlserver import mlserver_figures

        log("peer: MLServer serving scikit-learn's own pipeline for the same model")
        results["peer"] = {
            **mlserver_figures(reference, test, args.repeats, http_figures, log),
            "pipeline": "scikit-learn's own (HashingVectorizer → TfidfTransformer → one-vs-rest SGD)",
        }
        log("peer: MLServer serving saikika's pipeline (its featuriser included)")
        results["peer_same_pipeline"] = {
            **mlserver_figures(
                pipeline_file.load(files.model, files.metadata).scorer.__self__, test, args.repeats, http_figures, log
            ),
            "pipeline": "saikika's (model.skops: saikika's featuriser → TfidfTransformer → one-vs-rest SGD)",
        }
    if not args.skip_training:
        log("training")
        results["training"] = training_figures(train, (1_000, 10_000, 100_000))
    if not args.skip_batch:
        log("batch: the Beam pipeline on the DirectRunner over 50,000 items (bench/batch.py, in .venv)")
        results["batch"] = batch_figures(args.out.with_name("batch.json"))

    results["ratios"] = ratios(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {args.out} and {write_markdown(args.out, markdown)}")
    print(json.dumps(results["ratios"], indent=2))


def batch_figures(out: Path) -> dict:
    """Apache Beam lives in the dev environment (.venv), not beside MLServer: bench/batch.py runs there and
    measures the in-process ceiling itself, on the same items, in the same run."""
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run(
        [str(python), str(REPO / "bench" / "batch.py"), "--out", str(out)], check=True, stdout=subprocess.DEVNULL
    )
    return json.loads(out.read_text())


def paired_ratios(paired: dict, prefix: str = "") -> dict:
    """Saikika against scikit-learn's pipeline from `paired_ceilings`: items/s on 100-item batches, ours ÷ theirs,
    and single-item p50 latency, theirs ÷ ours."""
    return {
        f"{prefix}ceiling_vs_sklearn": (
            paired["saikika"]["items_per_s_100"]["median"] / paired["sklearn"]["items_per_s_100"]["median"]
        ),
        f"{prefix}single_vs_sklearn": paired["sklearn"]["single_p50_ms"] / paired["saikika"]["single_p50_ms"],
    }


def ratios(r: dict) -> dict:
    ceiling_rate = r["ceiling"]["items_per_s_100"]["median"]
    peer_http = (r.get("peer") or {}).get("http") or {}
    same_http = (r.get("peer_same_pipeline") or {}).get("http") or {}
    paired = r["ceilings_vs_sklearn"]
    at_100k = (r.get("training") or {}).get("100000")
    return {
        **paired_ratios(paired),
        "single_vs_sklearn_interleaved": (
            paired["sklearn"]["single_interleaved_p50_ms"] / paired["saikika"]["single_interleaved_p50_ms"]
        ),
        "train_vs_sklearn": (at_100k["sklearn-fit"]["seconds"] / at_100k["saikika-fit"]["seconds"])
        if at_100k
        else None,
        "train_run_vs_sklearn": (at_100k["sklearn-fit"]["seconds"] / at_100k["saikika-run"]["seconds"])
        if at_100k
        else None,
        "cold_start_vs_naive": r["cold_start"]["saikika_s"]["median"] / r["cold_start"]["naive_s"]["median"],
        "http_vs_ceiling": r["http"]["items_per_s_100_c1"]["median"] / ceiling_rate,
        "pubsub_vs_ceiling": r["pubsub"]["items_per_s_100"]["median"] / ceiling_rate,
        "throughput_vs_mlserver": (
            r["http"]["items_per_s_100_c8"]["median"] / peer_http["items_per_s_100_c8"]["median"] if peer_http else None
        ),
        "p50_latency_vs_mlserver": (
            r["http"]["single_p50_ms_c8"]["median"] / peer_http["single_p50_ms_c8"]["median"] if peer_http else None
        ),
        # MLServer serving saikika's own pipeline: its featuriser included, so this isolates the serving path.
        "throughput_vs_mlserver_same_pipeline": (
            r["http"]["items_per_s_100_c8"]["median"] / same_http["items_per_s_100_c8"]["median"] if same_http else None
        ),
        "batch_vs_ceiling": (r.get("batch") or {}).get("batch_vs_ceiling"),
        **word_vector_ratios(r.get("word_vectors")),
    }


def titles_ceilings(train: list[Item], test: list[Item], config, repeats: int) -> dict:
    """Items that are titles alone, where the word vectors are meant to be used: models trained on the titles with
    and without them, each paired with scikit-learn's pipeline fitted on the same titles."""

    def titles(items: list[Item]) -> list[Item]:
        return [Item(id=item.id, title=item.title, labels=item.labels) for item in items]

    train, test = titles(train), titles(test)
    out = {}
    for name, used in (("ngrams", training.DEFAULT_CONFIG), ("word_vectors", config)):
        files = training.serialize(training.train(train, config=used))
        served = artifact.load_inference(files.inference, files.metadata)
        reference, _ = sklearn_pipeline(train, list(served.labels))
        out[name] = paired_ceilings(
            served, LabelModel("sklearn", served.labels, served.thresholds, reference.predict_proba), test, repeats
        )
    return out


def word_vector_ratios(w: dict | None) -> dict:
    """The model with title word vectors, against the same scikit-learn pipeline and naive function."""
    if not w:
        return {}
    out = {
        **paired_ratios(w["ceilings_vs_sklearn"], "word_vectors_"),
        "word_vectors_cold_start_vs_naive": (
            w["cold_start"]["saikika_s"]["median"] / w["cold_start"]["naive_s"]["median"]
        )
        if "cold_start" in w
        else None,
    }
    for name, paired in w["titles"].items():
        out.update(paired_ratios(paired, f"titles_{name}_"))
    return out


def paired_rows(what: str, paired: dict, single: str = "single item p50 ms") -> list[tuple[str, str, str]]:
    return [
        (
            f"{what}: items/s (100-item batches)",
            fmt(paired["saikika"]["items_per_s_100"]),
            f"scikit-learn {fmt(paired['sklearn']['items_per_s_100'])}",
        ),
        (
            f"{what}: {single}",
            fmt(paired["saikika"]["single_p50_ms"]),
            f"scikit-learn {fmt(paired['sklearn']['single_p50_ms'])}",
        ),
    ]


def serving_rows(r: dict) -> list[tuple[str, str, str]]:
    paired = r["ceilings_vs_sklearn"]
    rows = [
        ("ceiling, items/s (100-item batches)", fmt(r["ceiling"]["items_per_s_100"]), ""),
        ("ceiling, single item p50 ms", fmt(r["ceiling"]["single_p50_ms"]), ""),
        *paired_rows("paired with scikit-learn's pipeline", paired, "single item p50 ms (blocks of 50 calls)"),
        (
            "paired with scikit-learn's pipeline: single item p50 ms (call by call)",
            fmt(paired["saikika"]["single_interleaved_p50_ms"]),
            f"scikit-learn {fmt(paired['sklearn']['single_interleaved_p50_ms'])}",
        ),
    ]
    peer = (r.get("peer") or {}).get("http") or {}
    same = (r.get("peer_same_pipeline") or {}).get("http") or {}
    for key in HTTP_KEYS:
        rows.append(
            (
                f"http {key}",
                fmt(r["http"][key]),
                f"{fmt(peer.get(key))} (scikit-learn's pipeline); {fmt(same.get(key))} (saikika's pipeline)",
            )
        )
    return rows + [
        ("pubsub end to end, items/s", fmt(r["pubsub"]["items_per_s_100"]), ""),
        (
            "cold start s (saikika / naive)",
            fmt(r["cold_start"]["saikika_s"]),
            f"naive {fmt(r['cold_start']['naive_s'])}",
        ),
        (
            "serving peak RSS MB after 10k predictions",
            fmt(r["memory"]["serving_peak_rss_mb_after_10k_predictions"]),
            "",
        ),
        ("model.skops MB / load s", f"{r['model']['model_skops_mb']:.1f} / {fmt(r['model']['load_skops_s'])}", ""),
        ("model.npz MB / load s", f"{r['model']['model_npz_mb']:.1f} / {fmt(r['model']['load_inference_s'])}", ""),
    ]


HTTP_KEYS = (
    "items_per_s_100_c1",
    "items_per_s_100_c8",
    "single_p50_ms_c1",
    "single_p99_ms_c1",
    "single_p50_ms_c8",
    "single_p99_ms_c8",
)


def word_vector_rows(w: dict | None) -> list[tuple[str, str, str]]:
    if not w:
        return []
    rows = [
        *paired_rows("with title word vectors", w["ceilings_vs_sklearn"]),
        (
            "with title word vectors: model.npz MB / load s",
            f"{w['model']['model_npz_mb']:.1f} / {fmt(w['model']['load_inference_s'])}",
            "",
        ),
    ]
    if "cold_start" in w:
        rows.append(
            (
                "with title word vectors: cold start s",
                fmt(w["cold_start"]["saikika_s"]),
                f"naive {fmt(w['cold_start']['naive_s'])}",
            )
        )
    for name, titles in w["titles"].items():
        rows += paired_rows(f"titles alone, {name}", titles)
    return rows


def batch_and_training_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    if r.get("batch"):
        b = r["batch"]
        rows.append(
            (
                f"batch, Beam DirectRunner, {b['items']} items: items/s / peak RSS MB",
                f"{b['pipeline_items_per_s']:.4g} / {b['pipeline_peak_rss_mb']:.4g}",
                f"ceiling {b['ceiling_items_per_s_100']:.4g} items/s (same run)",
            )
        )
    for size, by_mode in (r.get("training") or {}).items():
        for mode in TRAINING_MODES:
            runs = by_mode[mode].get("seconds_runs") or [by_mode[mode]["seconds"]]
            rows.append(
                (
                    f"training {size} rows, {mode}: s, median (min–max) of {len(runs)} / peak RSS MB",
                    f"{by_mode[mode]['seconds']:.1f} ({min(runs):.1f}–{max(runs):.1f}) / "
                    f"{by_mode[mode]['peak_rss_mb']:.0f}",
                    "",
                )
            )
    return rows


def markdown(r: dict) -> list[str]:
    rows = serving_rows(r) + word_vector_rows(r.get("word_vectors")) + batch_and_training_rows(r)
    return [
        f"# saikika benchmark ({r['created_at']})",
        "",
        "Written by `make bench` (`bench/run.py`) from `bench/results.json`; `python bench/run.py --markdown-only`",
        "rewrites it from that file. What each figure measures, and how: `docs/benchmarks.md`.",
        "",
        f"Data: {r['data']['source']}. Machine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}.",
        "",
        *table(("figure", "saikika: median (min–max)", "MLServer (or as named)"), rows),
        "",
        *table(
            ("ratio", "value", "target"),
            ((k, fmt(v), TARGETS.get(k, "")) for k, v in r["ratios"].items()),
        ),
    ]


if __name__ == "__main__":
    main()
