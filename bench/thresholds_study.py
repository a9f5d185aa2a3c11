"""The threshold rule before and after (saikika.model.thresholds, docs/thresholds.md), on the same fitted models:
the old rule is `tune_thresholds(..., min_threshold=0)` (the best-F1 cut over all scores, halfway into the gap
below it, no floor), the new one its defaults. Thresholds are retuned on each fit's own tuning-split scores, so
the two rules differ in nothing else.

- synthetic catalogue (`saikika catalogue --rows 1500`, seed 7): the thresholds, the scores and labels of the
  issue's two texts, and how many of tests/out_of_catalogue.py's texts get a label;
- livedoor `split_kikuta` (train → test, full text): top-1 and micro F1 as served.

    .venv/bin/python bench/thresholds_study.py --out bench/thresholds.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from saikika.core.items import Item  # noqa: E402
from saikika.core.metrics import evaluate_scores  # noqa: E402
from saikika.model import artifact, catalogue, evaluation, training  # noqa: E402
from saikika.model.thresholds import tune_thresholds  # noqa: E402
from tests import out_of_catalogue  # noqa: E402
from tests.livedoor import livedoor_item  # noqa: E402

CORPUS = REPO.parent / "shared" / "data" / "livedoor-news-corpus" / "livedoor.jsonl"
RULES = {"before": {"min_threshold": 0.0}, "after": {}}
PROBES = [Item(id="wallet", title="handmade leather wallet vintage"), Item(id="mug", title="mug")]


def served(trained: training.TrainedModel, rule: dict):
    files = training.serialize(trained)
    model = artifact.load_inference(files.inference, files.metadata)
    return replace(model, thresholds=tune_thresholds(trained.tuning_scores, trained.tuning_truth, **rule))


def catalogue_study() -> dict:
    trained = training.train(list(catalogue.generate(1500, seed=7)))
    out = {}
    for name, rule in RULES.items():
        model = served(trained, rule)
        probes = model.predict(PROBES)
        strangers = model.predict(out_of_catalogue.items())
        out[name] = {
            "thresholds": {label: round(float(t), 4) for label, t in zip(model.labels, model.thresholds)},
            "tuning_micro_f1": evaluate_scores(
                trained.tuning_scores, trained.tuning_truth, model.thresholds, list(model.labels)
            )["micro_f1"],
            "probes": {item.title: {"labels": p.labels, "kids": p.scores["kids"]} for item, p in zip(PROBES, probes)},
            "out_of_catalogue_labeled": sum(bool(p.labels) for p in strangers),
            "out_of_catalogue_texts": len(strangers),
            "out_of_catalogue_labels": {
                text: p.labels for text, p in zip(out_of_catalogue.TEXTS, strangers) if p.labels
            },
        }
    return out


def livedoor_study() -> dict:
    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    train_items = [livedoor_item(r) for r in records if r["split_kikuta"] == "train"]
    test_items = [livedoor_item(r) for r in records if r["split_kikuta"] == "test"]
    trained = training.train(train_items)
    out = {}
    for name, rule in RULES.items():
        model = served(trained, rule)
        result = evaluation.evaluate(model, test_items)
        out[name] = {
            "top1_accuracy": result["top1_accuracy"],
            "micro_f1": result["micro_f1"],
            "macro_f1": result["macro_f1"],
            "thresholds": {label: round(float(t), 4) for label, t in zip(model.labels, model.thresholds)},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "thresholds.json")
    args = parser.parse_args()
    result = {"catalogue_1500": catalogue_study(), "livedoor_full_text": livedoor_study()}
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
