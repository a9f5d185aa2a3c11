"""Shared fixtures: a small synthetic model (no cloud), the real corpus location, isolated env."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from saikika.model import catalogue, training

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "livedoor-news-corpus" / "livedoor.jsonl"
# Built by `make word-vectors` (a prerequisite of `make test`).
WORD_VECTORS = REPO / ".cache" / "word-vectors" / "ja-ginza-5.3.0.npz"

# What `make test-fast` (-m "not slow") leaves out, by path, so a new test in one of these places is slow without
# anyone remembering to mark it: the emulators and functions-framework processes, terraform and checkov (its own
# virtualenv), the quality floors (the livedoor corpus, full-size training), the import contracts (lint-imports on
# copies of the package), and the few unit tests `--durations` shows taking many seconds.
SLOW = (
    "tests/integration/",
    "tests/unit/test_quality_livedoor.py",
    "tests/unit/test_layers.py",
    "tests/unit/test_terraform.py::test_terraform_fmt",
    "tests/unit/test_terraform.py::test_checkov_reports_no_failed_check",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def trained_small() -> training.TrainedModel:
    return training.train(list(catalogue.generate(1500, seed=11)))


@pytest.fixture(scope="session")
def model_files(trained_small) -> tuple[bytes, dict]:
    return training.serialize(trained_small)


@pytest.fixture(scope="session")
def corpus_records() -> list[dict]:
    if not CORPUS.exists():
        message = f"the livedoor corpus is not at {CORPUS} (the team folder ../shared/data is absent)"
        if os.environ.get("CI"):
            # CI is given ../shared beside the clone: the floor must run there, never pass by being skipped.
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="session")
def title_word_vectors():
    from saikika.model.word_vectors import WordVectors

    if not WORD_VECTORS.exists():
        message = f"the title word vectors are not at {WORD_VECTORS} (make word-vectors builds them)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; `make test` builds them in CI")
        pytest.skip(message)
    return WordVectors.from_bytes(WORD_VECTORS.read_bytes())
