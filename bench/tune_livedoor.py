"""Choose the training configuration on the livedoor corpus: train on `train`, score every candidate on `dev`,
then report the chosen one on `test`, once. The choice spends speed only where it buys measurable quality
(the one-standard-error rule): among the candidates whose mean dev top-1 over full text and titles is within one
standard error of the best, the cheapest to serve (fewest n-gram lengths, then fewest feature bits), then the
best mean dev top-1, then the best full-text dev top-1. Also measures what float32 weights cost: the chosen
full-text model scored with float64 weights against float32.

    .venv/bin/python bench/tune_livedoor.py --out bench/tuning.json

Never reads `test` to choose. Needs ../shared/data/livedoor-news-corpus.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from saikika.core.items import Item
from saikika.model import artifact, evaluation, training
from saikika.model.label_model import LabelModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import add_markdown_only, fmt, table, write_markdown  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "livedoor-news-corpus" / "livedoor.jsonl"
GRID = {
    "ngram_range": [(1, 3), (1, 4), (2, 4)],
    "bits": [18, 20],
    "alpha": [5e-7, 1e-6, 2e-6, 4e-6],
}


def items(records: list[dict], split: str, titles_only: bool) -> list[Item]:
    # The corpus' text starts with the title line; the rest is the description.
    return [
        Item(
            id=r["id"],
            title=r["title"],
            labels=tuple(r["labels"]),
            description="" if titles_only else r["text"][len(r["title"]) :].strip(),
        )
        for r in records
        if r["split_kikuta"] == split
    ]


def served(trained: training.TrainedModel) -> LabelModel:
    """The model as predictors serve it: the inference artifact."""
    files = training.serialize(trained)
    return artifact.load_inference(files.inference, files.metadata)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/tuning.json"))
    parser.add_argument(
        "--candidates-from",
        type=Path,
        help="a previous run's output: choose among its measured candidates instead of the grid",
    )
    add_markdown_only(parser)
    args = parser.parse_args()
    if args.markdown_only:
        print(write_markdown(args.out, markdown))
        return
    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    data = {
        (split, titles): items(records, split, titles) for split in ("train", "dev", "test") for titles in (False, True)
    }
    candidates = json.loads(args.candidates_from.read_text())["candidates"] if args.candidates_from else []
    for ngram_range, bits, alpha in [] if args.candidates_from else itertools.product(*GRID.values()):
        config = training.TrainingConfig(ngram_range, bits, alpha)
        row = {"config": config.to_json()}
        for titles in (False, True):
            started = time.perf_counter()
            trained = training.train(data["train", titles], config=config)
            seconds = time.perf_counter() - started
            dev = evaluation.evaluate(served(trained), data["dev", titles])
            key = "titles" if titles else "full_text"
            row[key] = {
                "dev_top1": dev["top1_accuracy"],
                "dev_micro_f1": dev["micro_f1"],
                "train_seconds": round(seconds, 1),
            }
        row["dev_top1_mean"] = (row["full_text"]["dev_top1"] + row["titles"]["dev_top1"]) / 2
        candidates.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    dev_rows = len(data["dev", False])
    best = choose(candidates, dev_rows)
    config = training.TrainingConfig(
        tuple(best["config"]["ngram_range"]), best["config"]["bits"], best["config"]["alpha"]
    )
    chosen = {"config": best["config"]}
    for titles in (False, True):
        trained = training.train(data["train", titles], config=config)
        model = served(trained)
        test = evaluation.evaluate(model, data["test", titles])
        key = "titles" if titles else "full_text"
        chosen[key] = {
            "test_top1": test["top1_accuracy"],
            "test_micro_f1": test["micro_f1"],
            "test_macro_f1": test["macro_f1"],
        }
    chosen["float32_weights"] = float32_cost(data["train", False], data["test", False], config)
    top = max(row["dev_top1_mean"] for row in candidates)
    result = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "grid": GRID,
        "rule": {
            "best_dev_top1_mean": top,
            "standard_error": standard_error(top, dev_rows),
            "within_one_standard_error": [
                row["config"] for row in candidates if row["dev_top1_mean"] >= top - standard_error(top, dev_rows)
            ],
        },
        "candidates": candidates,
        "chosen": chosen,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(args.out, markdown)
    print(json.dumps(chosen, indent=2))


def markdown(r: dict) -> list[str]:
    def name(config: dict) -> str:
        low, high = config["ngram_range"]
        return f"{low}–{high}-grams, 2^{config['bits']}, alpha {config['alpha']}"

    within = [name(config) for config in r["rule"]["within_one_standard_error"]]
    chosen = r["chosen"]
    return [
        f"# The training configuration, chosen on livedoor `dev` ({r['created_at']})",
        "",
        "Written by `bench/tune_livedoor.py` from `bench/tuning.json`; `python bench/tune_livedoor.py --markdown-only`",
        "rewrites it from that file. The rule and why: `docs/model.md`.",
        "",
        f"Best mean dev top-1 (full text and titles): {fmt(round(r['rule']['best_dev_top1_mean'], 4))}; one standard "
        f"error: {r['rule']['standard_error'] * 100:.2f} points; {len(within)} of {len(r['candidates'])} candidates "
        "within it.",
        "",
        *table(
            ("candidate", "full text: dev top-1", "titles: dev top-1", "mean", "within one SE"),
            (
                (
                    name(row["config"]),
                    fmt(round(row["full_text"]["dev_top1"], 4)),
                    fmt(round(row["titles"]["dev_top1"], 4)),
                    fmt(round(row["dev_top1_mean"], 4)),
                    "yes" if name(row["config"]) in within else "",
                )
                for row in r["candidates"]
            ),
        ),
        "",
        f"Chosen: {name(chosen['config'])}, measured once on `test`:",
        "",
        *table(
            ("text", "top-1", "micro F1", "macro F1"),
            (
                (text, *(fmt(round(chosen[key][m], 4)) for m in ("test_top1", "test_micro_f1", "test_macro_f1")))
                for text, key in (("title + description", "full_text"), ("titles alone", "titles"))
            ),
        ),
        "",
        "float32 weights against float64 (full text, `test`): top-1 "
        f"{fmt(round(chosen['float32_weights']['top1_float32'], 4))} against "
        f"{fmt(round(chosen['float32_weights']['top1_float64'], 4))}, largest score difference "
        f"{chosen['float32_weights']['max_score_difference']:.1e}.",
    ]


def standard_error(accuracy: float, dev_rows: int) -> float:
    """Of a mean of two top-1 accuracies, each over `dev_rows` items (a binomial proportion over both)."""
    return (accuracy * (1 - accuracy) / (2 * dev_rows)) ** 0.5


def choose(candidates: list[dict], dev_rows: int) -> dict:
    top = max(row["dev_top1_mean"] for row in candidates)
    near = [row for row in candidates if row["dev_top1_mean"] >= top - standard_error(top, dev_rows)]

    def cost(row: dict) -> tuple:
        low, high = row["config"]["ngram_range"]
        return high - low + 1, row["config"]["bits"]

    return min(near, key=lambda row: (cost(row), -row["dev_top1_mean"], -row["full_text"]["dev_top1"]))


def float32_cost(train_items: list[Item], test_items: list[Item], config: training.TrainingConfig) -> dict:
    """The same fit scored with its float64 weights and with the float32 weights saikika stores, on test rows."""
    from saikika.core.metrics import binarize, top1_accuracy

    labels = sorted({label for item in train_items for label in item.labels})
    featuriser = config.featuriser()
    tfidf, classifier = training._fit(
        featuriser.transform([i.text() for i in train_items]), None, binarize(train_items, labels), config.alpha
    )
    test_counts = featuriser.transform([i.text() for i in test_items])
    exact = classifier.predict_proba(tfidf.transform(test_counts))
    training._round_to_float32(tfidf, classifier)
    rounded = classifier.predict_proba(tfidf.transform(test_counts))
    truth = binarize(test_items, labels)
    return {
        "max_score_difference": float(np.abs(exact - rounded).max()),
        "top1_float64": top1_accuracy(exact, truth),
        "top1_float32": top1_accuracy(rounded, truth),
    }


if __name__ == "__main__":
    main()
