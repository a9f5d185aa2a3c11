"""Quality floors on a real public corpus (livedoor news, split_kikuta), scored as served: full text with the
default configuration, titles only with the title word vectors (`make word-vectors`).

Deterministic seeds; no timing. Skipped with a reason where ../shared/data is absent.
"""

from __future__ import annotations

import pytest

from saikika.model import artifact, evaluation, training
from saikika.model.training import train
from tests.livedoor import livedoor_item


def served_top1(corpus_records, titles_only: bool, config: training.TrainingConfig) -> dict:
    train_items = [livedoor_item(r, titles_only) for r in corpus_records if r["split_kikuta"] == "train"]
    test_items = [livedoor_item(r, titles_only) for r in corpus_records if r["split_kikuta"] == "test"]
    files = training.serialize(train(train_items, config=config))
    result = evaluation.evaluate(artifact.load_inference(files.inference, files.metadata), test_items)  # as served
    assert result["rows"] == 1473
    assert result["micro_f1"] > 0.8
    return result


@pytest.fixture(scope="module")
def full_text_in_memory(corpus_records) -> dict:
    """The in-memory fit on full text with the default configuration, as served: one fit for the floor below and
    for the streamed fit's comparison (the fit is deterministic, so a second one would give the same figures)."""
    return served_top1(corpus_records, False, training.DEFAULT_CONFIG)


def test_livedoor_full_text_floor_with_the_default_configuration(full_text_in_memory):
    assert full_text_in_memory["top1_accuracy"] >= 0.965, full_text_in_memory["top1_accuracy"]


def test_livedoor_titles_only_with_the_default_configuration_holds_its_level(corpus_records):
    """A regression guard: n-grams alone on titles (0.8547 at this writing)."""
    result = served_top1(corpus_records, True, training.DEFAULT_CONFIG)
    assert result["top1_accuracy"] >= 0.85, result["top1_accuracy"]


def test_livedoor_titles_only_floor_with_title_word_vectors(corpus_records, title_word_vectors):
    """Titles alone, trained with the pretrained title word vectors `make word-vectors` builds (chiVe): the
    n-grams alone stay near 0.855 (bench/titles_study.py), below the 0.86 floor."""
    result = served_top1(corpus_records, True, training.TrainingConfig.with_word_vectors(title_word_vectors))
    assert result["top1_accuracy"] >= 0.86, result["top1_accuracy"]


def test_inference_arrays_match_the_pipeline_on_the_livedoor_test_split(corpus_records):
    from saikika.model import inference_artifact

    train_items = [livedoor_item(r, False) for r in corpus_records if r["split_kikuta"] == "train"][:1500]
    texts = [livedoor_item(r, False).text() for r in corpus_records if r["split_kikuta"] == "test"]
    trained = train(train_items)
    scorer = inference_artifact.load(training.export_inference(trained.pipeline))
    assert training.max_difference(trained.pipeline, scorer, texts) <= inference_artifact.MAX_SCORE_DIFFERENCE


def test_streaming_training_stays_within_half_a_point_of_the_in_memory_fit(corpus_records, full_text_in_memory):
    """The bounded-memory fit (chunks of 2,000 rows, averaged SGD) against the in-memory one on livedoor `test`."""
    train_items = [livedoor_item(r, False) for r in corpus_records if r["split_kikuta"] == "train"]
    test_items = [livedoor_item(r, False) for r in corpus_records if r["split_kikuta"] == "test"]

    def batches():
        return (train_items[i : i + 2000] for i in range(0, len(train_items), 2000))

    files = training.serialize(training.train_streaming(batches))
    streamed = evaluation.evaluate(artifact.load_inference(files.inference, files.metadata), test_items)
    in_memory = full_text_in_memory["top1_accuracy"]
    assert abs(in_memory - streamed["top1_accuracy"]) <= 0.005, (in_memory, streamed["top1_accuracy"])
