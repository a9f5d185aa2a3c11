"""Why this label: the explanation rebuilds the served score exactly, names real substrings, and is the same code
in every place that explains (the HTTP predictor, batch, the CLI)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from saikika.core import jsonl
from saikika.core.items import Item
from saikika.model import artifact, catalogue, explain, training
from saikika.model.featuriser import CharNgramHasher
from saikika.model.inference_artifact import FORMAT_WORDS
from tests.unit.test_word_vectors import small_vectors

ITEMS = [
    Item("e1", title="防水 スニーカー 軽量", description="雨の日も安心の防水加工、防水", tags=("outdoor",)),
    Item("e2", description="hand-crafted retro lamp, vintage brass"),
    Item("e3", title="Kids  RAINCOAT\t\twaterproof", tags=("kids", "rain")),
    Item("e4", title="x"),
]


@pytest.fixture(scope="module")
def served(model_files):
    return artifact.load_inference(model_files.inference, model_files.metadata)


@pytest.fixture(scope="module")
def served_with_words():
    words = sorted({w for item in catalogue.generate(400, seed=2) for w in item.title.split()} | {"防水", "スニーカー"})
    trained = training.train(
        list(catalogue.generate(1500, seed=11)),
        config=training.TrainingConfig.with_word_vectors(small_vectors(words, dimensions=16)),
    )
    files = training.serialize(trained)
    assert files.metadata["inference"]["format"] == FORMAT_WORDS
    return artifact.load_inference(files.inference, files.metadata)


def rebuilt_scores(model, item, k):
    """Every label explained: the sigmoid of its parts, and the served scores beside them."""
    explanations = explain.explain(model, item, k, labels=list(model.labels))
    rebuilt = [1.0 / (1.0 + math.exp(-e.decision())) for e in explanations]
    return explanations, np.array(rebuilt), model.scores([item.text()])[0]


@pytest.mark.parametrize("k", [1, 5, 1000])
@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_the_contributions_rebuild_each_labels_score(served, item, k):
    explanations, rebuilt, scores = rebuilt_scores(served, item, k)
    np.testing.assert_allclose(rebuilt, scores, rtol=0, atol=1e-9)
    np.testing.assert_allclose([e.score for e in explanations], scores, rtol=0, atol=1e-9)
    for e in explanations:
        assert 1 <= len(e.ngrams) <= k
        contributions = [t.contribution for t in e.ngrams]
        assert contributions == sorted(contributions, reverse=True)
        assert not e.words


@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_with_title_word_vectors_the_words_are_part_of_the_score(served_with_words, item):
    explanations, rebuilt, scores = rebuilt_scores(served_with_words, item, 5)
    np.testing.assert_allclose(rebuilt, scores, rtol=0, atol=1e-9)
    words = {t.text for e in explanations for t in e.words}
    if item.title.startswith("防水"):
        assert {"防水", "スニーカー"} <= words
    assert words <= set(item.title.split())


def test_the_substrings_are_the_texts_ngrams_and_the_top_one_is_the_strongest(served):
    item = ITEMS[0]
    (label_explanation,) = explain.explain(served, item, 3, labels=["waterproof"])
    top = label_explanation.ngrams[0]
    normalised = item.text().lower()
    assert all(t.text in normalised for t in label_explanation.ngrams)
    assert "防" in top.text or "水" in top.text
    # "防水" occurs three times in the item's text.
    occurrences = {t.text: t.occurrences for t in explain.explain(served, item, 1000, labels=["waterproof"])[0].ngrams}
    assert occurrences["防水"] == 3


def test_by_default_the_predicted_labels_are_explained(served):
    item = ITEMS[0]
    assert [e.label for e in explain.explain(served, item, 2)] == served.predict([item])[0].labels


def test_occurrences_count_what_the_hasher_counts():
    hasher = CharNgramHasher((1, 3), 18, True)
    for text in ["", "a", "ab", "Σίσυφος  İstanbul\n\n\tdone", "防水 防水\ud800 x", "x" * 50]:
        _, _, _, features = hasher.occurrences(text)
        counts = hasher([text])
        found, found_counts = np.unique(features, return_counts=True)
        order = np.argsort(counts.indices)
        assert found.tolist() == counts.indices[order].tolist()
        assert found_counts.tolist() == counts.counts[order].tolist()


def test_a_model_without_an_exact_explanation_is_refused():
    from tests import legacy_v1

    files, _ = legacy_v1.build(list(catalogue.generate(400, seed=5)), sorted(catalogue.FEATURES))
    model = artifact.load_inference(files.inference, files.metadata)
    with pytest.raises(explain.NotExplainable, match="retrain"):
        explain.explain(model, ITEMS[0], 5)


def test_the_cli_explains_with_the_same_code(tmp_path, model_files, served):
    import json as json_module

    from click.testing import CliRunner

    from saikika.tooling.cli import main

    artifact.write_dir(tmp_path, model_files)
    args = ["explain", "--model", str(tmp_path), "--title", "防水 スニーカー", "--tags", "outdoor,rain", "--top", "4"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    item = Item("cli", title="防水 スニーカー", tags=("outdoor", "rain"))
    expected = [e.to_json() for e in explain.explain(served, item, 4)]
    assert json_module.loads(result.output) == expected and expected
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0 and expected[0]["label"] in table.output
    refused = CliRunner().invoke(main, ["explain", "--model", str(tmp_path), "--title", " "])
    assert refused.exit_code != 0 and "non-blank" in refused.output


def test_batch_runs_explain_with_the_same_code(tmp_path, model_files, served):
    import json as json_module

    from saikika.cloud import batch_pipeline

    artifact.write_dir(tmp_path / "model", model_files)
    (tmp_path / "in").mkdir()
    lines = [json_module.dumps(item.to_json(), ensure_ascii=False) for item in ITEMS]
    (tmp_path / "in" / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    batch_pipeline.main(
        [
            "--input",
            str(tmp_path / "in" / "*.jsonl"),
            "--output",
            str(out),
            "--model_folder",
            str(tmp_path / "model"),
            "--explain",
            "3",
            "--runner=DirectRunner",
        ]
    )
    written = {
        line["id"]: line
        for part in out.glob("part-*.jsonl")
        for line in map(json_module.loads, jsonl.lines(part.read_text(encoding="utf-8")))
    }
    assert set(written) == {item.id for item in ITEMS}
    for item in ITEMS:
        expected = [e.to_json() for e in explain.explain(served, item, 3)]
        assert written[item.id]["explanations"] == expected
        assert [e["label"] for e in expected] == written[item.id]["labels"]
