"""Model versions written by a release and kept in the repo (`tests/fixtures/models/<saikika version>/`), so the
suite shows that the current code, with the scikit-learn and skops it is installed with, still loads what a
deployed release wrote and scores it the same. An upgrade that breaks loading at promote time fails here first.

Two folders per release: `<release>/` (n-grams only, inference format v3) and `<release>-word-vectors/` (with
title word vectors over a tiny vocabulary, format v4, `TitleWordVectors` inside model.skops). Each folder holds `model.skops`, `model.npz` and `metadata.json` exactly as `training.serialize` wrote them, and
`scores.json`: the texts below and the scores that release gave them. Written once per release, never rewritten:

    .venv/bin/python -m tests.model_fixtures <saikika version>
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from saikika.model import artifact, catalogue, pipeline_file, training
from saikika.model.word_vectors import WordVectors

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
SCORES_FILE = "scores.json"
# 2^10 features keep the three files small (tens of KB); the arithmetic is the same at any size.
CONFIG = training.TrainingConfig(bits=10)
TEXTS = [
    "防水 ワイヤレス スピーカー\n持ち運びに便利なコンパクト設計です。",
    "vintage handmade leather bag\nGently used, ships in two days.",
    "kids organic cotton",
    "",
    "限定品 腕時計 " * 200,
    "ÉTÉ été ÉtÉ — naïve café\ttabs\r\nand lines",
    "🙂 絵文字 emoji ☃",
    "a",
]


def tiny_word_vectors() -> WordVectors:
    """The catalogue's own words, four seeded random dimensions each: the v4 arithmetic at a few KB."""
    words = sorted(
        {
            word
            for feature in catalogue.FEATURES.values()
            for phrases in feature.values()
            for phrase in phrases
            for word in phrase.split()
        }
    )
    vectors = np.random.default_rng(5).standard_normal((len(words), 4)).astype(np.float32)
    return WordVectors.from_words(words, np.arange(len(words)), vectors)


def write(directory: Path, config: training.TrainingConfig = CONFIG) -> None:
    trained = training.train(list(catalogue.generate(600, seed=21)), config=config)
    files = training.serialize(trained)
    artifact.write_dir(directory, files)
    scores = pipeline_file.load(files.model, files.metadata).scores(TEXTS)
    record = {"texts": TEXTS, "scores": scores.tolist(), "labels": list(files.metadata["labels"])}
    (directory / SCORES_FILE).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_release(release: str) -> None:
    write(FIXTURES / release)
    with_words = dataclasses.replace(CONFIG, alpha=training.WORD_VECTORS_ALPHA, word_vectors=tiny_word_vectors())
    write(FIXTURES / f"{release}-word-vectors", with_words)


if __name__ == "__main__":
    write_release(sys.argv[1])
