"""`make bench`, batch part: the Beam pipeline on the DirectRunner over 50,000 items (the livedoor articles
repeated with new ids), against the in-process ceiling measured in the same run on the same items.

Runs in the dev environment (.venv: apache-beam), not the bench one (MLServer's dependencies), and writes JSON
that bench/run.py merges. The pipeline runs as the launchers run it, `python -m saikika.cloud.batch_pipeline` in
a process of its own, so its peak RSS is that process's alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "livedoor-news-corpus" / "livedoor.jsonl"
sys.path.insert(0, str(REPO / "bench"))

from figures import TARGETS, add_markdown_only, fmt, table, write_markdown  # noqa: E402

from saikika.core.items import Item  # noqa: E402
from saikika.model import artifact, catalogue, training  # noqa: E402


def load() -> tuple[list[Item], list[Item], str]:
    if CORPUS.exists():
        records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
        items = [
            Item(
                id=r["id"],
                title=r["title"],
                description=r["text"][len(r["title"]) :].strip(),
                labels=tuple(r["labels"]),
            )
            for r in records
        ]
        train = [i for i, r in zip(items, records) if r["split_kikuta"] == "train"]
        return train, items, "livedoor news corpus, every article, repeated with new ids"
    items = list(catalogue.generate(4000, seed=7))
    return items[:3000], items, "synthetic catalogue (../shared/data absent)"


def ceiling_rate(model, items: list[Item]) -> float:
    began = time.perf_counter()
    for start in range(0, len(items), 100):
        model.predict(items[start : start + 100])
    return len(items) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--runner-args",
        default="--direct_num_workers=1",
        help="DirectRunner options, as the local launcher passes them",
    )
    add_markdown_only(parser)
    args = parser.parse_args()
    if args.markdown_only:
        print(write_markdown(args.out, markdown))
        return

    train, pool, source = load()
    files = training.serialize(training.train(train))
    model = artifact.load_inference(files.inference, files.metadata)
    items = [
        Item(id=f"b{n}", title=pool[n % len(pool)].title, description=pool[n % len(pool)].description)
        for n in range(args.items)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        artifact.write_dir(folder / "model", files)
        (folder / "in").mkdir()
        with (folder / "in" / "catalogue.jsonl").open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(
                    json.dumps(
                        {"id": item.id, "title": item.title, "description": item.description}, ensure_ascii=False
                    )
                    + "\n"
                )
        input_mb = (folder / "in" / "catalogue.jsonl").stat().st_size / 2**20
        # The ceiling on the same items, before and after the pipeline (the machine's state drifts).
        sample = items[:10_000]
        rates = [ceiling_rate(model, sample)]
        began = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "saikika.cloud.batch_pipeline",
                f"--input={folder}/in/*.jsonl",
                f"--output={folder}/out",
                f"--model_folder={folder}/model",
                "--runner=DirectRunner",
                *args.runner_args.split(),
            ],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - began
        if result.returncode != 0:
            raise SystemExit(result.stderr[-3000:])
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rates.append(ceiling_rate(model, sample))
        success = json.loads((folder / "out" / "_SUCCESS").read_text())
        assert success["predicted"] == args.items, success
    ceiling = statistics.median(rates)
    figures = {
        "data": source,
        "items": args.items,
        "input_mb": round(input_mb, 1),
        "runner_args": args.runner_args,
        "pipeline_seconds": round(seconds, 2),
        "pipeline_items_per_s": round(args.items / seconds, 1),
        "ceiling_items_per_s_100": round(ceiling, 1),
        "ceiling_runs": [round(r, 1) for r in rates],
        "pipeline_peak_rss_mb": round(rss_mb, 1),
        "shards": success["shards"],
        "batch_vs_ceiling": round(args.items / seconds / ceiling, 3),
    }
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    write_markdown(args.out, markdown)
    print(json.dumps(figures, indent=2))


def markdown(b: dict) -> list[str]:
    return [
        "# saikika batch benchmark",
        "",
        "Written by `bench/batch.py` (run by `make bench`) from `bench/batch.json`; `python bench/batch.py --out",
        "bench/batch.json --markdown-only` rewrites it from that file. How it is measured: `docs/benchmarks.md`.",
        "",
        f"Data: {b['data']}: {b['items']} items, {b['input_mb']} MB of JSONL. Runner: DirectRunner, "
        f"`{b['runner_args']}`, `python -m saikika.cloud.batch_pipeline` in a process of its own.",
        "",
        *table(
            ("figure", "value"),
            (
                ("pipeline, end to end (process start included): s", fmt(b["pipeline_seconds"])),
                ("pipeline, end to end: items/s", fmt(b["pipeline_items_per_s"])),
                ("pipeline process peak RSS MB", fmt(b["pipeline_peak_rss_mb"])),
                ("output shards", fmt(b["shards"])),
                (
                    "in-process ceiling, 100-item batches, items/s (median of the runs before and after)",
                    f"{fmt(b['ceiling_items_per_s_100'])} (runs: {', '.join(fmt(x) for x in b['ceiling_runs'])})",
                ),
                (f"batch_vs_ceiling (target {TARGETS['batch_vs_ceiling']})", fmt(b["batch_vs_ceiling"])),
            ),
        ),
    ]


if __name__ == "__main__":
    main()
