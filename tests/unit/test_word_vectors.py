"""Title word vectors: the matcher against a plain-Python reading of its documented format, the vectors file,
the spaCy importer, and models trained with them (served as trained, saved and loaded safely)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saikika.core.items import Item
from saikika.model import artifact, catalogue, inference_artifact, pipeline_file, training, word_vectors
from saikika.model.word_vectors import WordVectors

VOCABULARY = [
    "防水",
    "防水加工",
    "加工",
    "スピーカー",
    "ワイヤレス",
    "芸能人",
    "能",
    "speaker",
    "waterproof",
    "water",
    "🙂",
    "e\u0301",
    "ｶﾀｶﾅ",
    "x" * 16,
]
EDGE_TEXTS = [
    "",
    "\n",
    "\n防水",
    "防水加工のスピーカー",
    "waterproofspeaker\nワイヤレス",
    "🙂🙂 e\u0301",
    "ｶﾀｶﾅ",
    "x" * 40,
    "防水" * 800,
    "\ud800 lone surrogate 防水",
    "no words here",
    "x" * 15,
]


def reference_words(vocabulary: list[str], text: str) -> list[str]:
    """The documented matcher in plain Python: greedy longest match over the first line, left to right."""
    head = text.split("\n", 1)[0][: word_vectors.HEAD_MAX_CODE_POINTS]
    known = set(vocabulary)
    longest = max(map(len, vocabulary))
    found, at = [], 0
    while at < len(head):
        match = next(
            (head[at : at + n] for n in range(min(longest, len(head) - at), 0, -1) if head[at : at + n] in known), None
        )
        found.append(match) if match else None
        at += len(match) if match else 1
    return found


def reference_key(word: str) -> int:
    h = 0xCBF29CE484222325
    for ch in word:
        h = ((h ^ ord(ch)) * 0x100000001B3) & (2**64 - 1)
    return h


def small_vectors(vocabulary=VOCABULARY, dimensions=8, weight=1.0) -> WordVectors:
    table = np.random.default_rng(0).normal(size=(len(vocabulary), dimensions)).astype(np.float32)
    return WordVectors.from_words(vocabulary, np.arange(len(vocabulary)), table, weight=weight)


def matched_words(vectors: WordVectors, vocabulary: list[str], texts: list[str]) -> list[list[str]]:
    indptr, rows = vectors.matches(texts)
    return [[vocabulary[r] for r in rows[a:b]] for a, b in zip(indptr[:-1], indptr[1:])]


def test_keys_are_fnv1a_64_over_code_points():
    words = ["", "a", "防水", "🙂", "\ud800", "x" * 40]
    assert word_vectors.word_keys(words).tolist() == [reference_key(w) for w in words]


def test_matches_the_documented_matcher_on_edge_cases():
    vectors = small_vectors()
    assert matched_words(vectors, VOCABULARY, EDGE_TEXTS) == [reference_words(VOCABULARY, t) for t in EDGE_TEXTS]
    # Longest first: 防水加工 is one word, not 防水 + 加工; only the first line counts.
    assert matched_words(vectors, VOCABULARY, ["防水加工", "\n防水"]) == [["防水加工"], []]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(list("防水加工スピーカーワイヤレス芸能人 \nwaterspk🙂\u0301ex")) | st.characters(),
            max_size=60,
        ),
        max_size=8,
    )
)
def test_matches_the_documented_matcher_on_any_text(texts):
    vectors = small_vectors()
    assert matched_words(vectors, VOCABULARY, texts) == [reference_words(VOCABULARY, t) for t in texts]


def test_features_are_the_weighted_mean_and_do_not_leak_between_texts():
    vectors = small_vectors(weight=0.5)
    features = vectors.features(EDGE_TEXTS)
    for text, row in zip(EDGE_TEXTS, features):
        words = reference_words(VOCABULARY, text)
        if not words:
            assert not row.any()
            continue
        mean = np.mean([vectors.vectors[VOCABULARY.index(w)].astype(np.float64) for w in words], axis=0)
        np.testing.assert_allclose(row, 0.5 * mean, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.vstack([vectors.features([t]) for t in EDGE_TEXTS]), features)


def test_a_folded_table_gives_the_features_terms_in_a_linear_model():
    """with_table(vectors @ coef.T) scores what the features times coef do: what a v4 predictor relies on."""
    vectors = small_vectors(weight=0.7)
    coef = np.random.default_rng(3).normal(size=(5, vectors.dimensions))
    folded = vectors.with_table(vectors.vectors.astype(np.float64) @ coef.T)
    np.testing.assert_allclose(folded.features(EDGE_TEXTS), vectors.features(EDGE_TEXTS) @ coef.T, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="rows"):
        vectors.with_table(np.zeros((2, 5)))


def test_a_vocabulary_is_checked():
    with pytest.raises(ValueError, match="share a 64-bit key"):
        WordVectors.from_words(["a", "a"], np.array([0, 1]), np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="outside"):
        WordVectors.from_words(["a"], np.array([5]), np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="float16, float32 or float64"):
        WordVectors.from_words(["a"], np.array([0]), np.ones((1, 3), np.int64))
    # Words too long to match, empty or spanning lines are left out, not refused.
    kept = WordVectors.from_words(["ok", "y" * 17, "", "a\nb"], np.zeros(4, int), np.ones((1, 3), np.float32))
    assert kept.hashes.tolist() == word_vectors.word_keys(["ok"]).tolist() and kept.max_length == 2


def test_the_vectors_file_round_trips_and_holds_nothing_to_unpickle():
    vectors = small_vectors()
    again = WordVectors.from_bytes(vectors.to_bytes())
    np.testing.assert_array_equal(again.features(EDGE_TEXTS), vectors.features(EDGE_TEXTS))
    buffer = io.BytesIO()
    np.savez(buffer, format=np.asarray(word_vectors.FORMAT), hashes=np.array([object()], dtype=object))
    with pytest.raises(ValueError):
        WordVectors.from_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="not a word-vectors file"):
        WordVectors.from_bytes(inference_artifact_bytes())


def inference_artifact_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, feature_rows=np.zeros((2, 2), np.float32))
    return buffer.getvalue()


# -- the spaCy importer -----------------------------------------------------------------------------------------------

# spaCy 3.8's `spacy.strings.hash_string` of these strings (MurmurHash64A, seed 1, of the UTF-8).
SPACY_KEYS = {
    "": 14313749767032693980,
    "a": 11901859001352538922,
    "の": 2917952641780334418,
    "芸能人": 14382297582569186049,
    "abcdefgh": 17751780907874141760,
    "abcdefghi": 13885881106499164936,
    "相次ぐ芸能人の“すっぴん”披露": 13430010124403656424,
    "iPhone": 15384251341661064994,
}


def test_murmurhash64a_gives_spacys_keys():
    from saikika.tooling.word_vectors_import import murmurhash64a

    assert {s: murmurhash64a(s.encode("utf-8")) for s in SPACY_KEYS} == SPACY_KEYS


def spacy_vocab_files(words: list[str], table: np.ndarray) -> dict[str, bytes]:
    import msgpack

    from saikika.tooling.word_vectors_import import murmurhash64a

    rows = {murmurhash64a(w.encode("utf-8")): i % table.shape[0] for i, w in enumerate(words)}
    vectors = io.BytesIO()
    np.save(vectors, table)
    strings = sorted(words + ["a string without a vector"])
    return {"strings.json": json.dumps(strings).encode(), "key2row": msgpack.packb(rows), "vectors": vectors.getvalue()}


@pytest.mark.parametrize("packed", ["folder", "wheel"])
def test_a_spacy_vocabulary_imports_from_a_folder_or_a_wheel(tmp_path, packed):
    from saikika.tooling.word_vectors_import import from_spacy_vocab

    table = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    files = spacy_vocab_files(["芸能人", "女優", "防水", "speaker"], table)
    if packed == "folder":
        (tmp_path / "pkg" / "pkg-1.0" / "vocab").mkdir(parents=True)
        for name, data in files.items():
            (tmp_path / "pkg" / "pkg-1.0" / "vocab" / name).write_bytes(data)
        source = tmp_path / "pkg"
    else:
        source = tmp_path / "pkg-1.0-py3-none-any.whl"
        with zipfile.ZipFile(source, "w") as wheel:
            for name, data in files.items():
                wheel.writestr(f"pkg/pkg-1.0/vocab/{name}", data)
    vectors = from_spacy_vocab(source)
    assert vectors.vectors.dtype == np.float16 and vectors.hashes.shape == (4,)
    indptr, rows = vectors.matches(["女優と芸能人の防水speaker"])
    assert rows.tolist() == [1, 0, 2, 0]  # 女優, 芸能人, 防水, speaker (rows i % 3)
    # Scaled so that the median row is 1 long, then float16.
    scaled = table.astype(np.float64) / np.median(np.linalg.norm(table.astype(np.float64), axis=1))
    np.testing.assert_array_equal(vectors.vectors, scaled.astype(np.float16))


# -- models trained with title word vectors ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue_vectors() -> WordVectors:
    words = sorted({w for item in catalogue.generate(400, seed=2) for w in item.title.split()} | set(VOCABULARY))
    return small_vectors(words, dimensions=16)


@pytest.fixture(scope="module")
def trained_with_vectors(catalogue_vectors) -> training.TrainedModel:
    return training.train(
        list(catalogue.generate(1500, seed=11)), config=training.TrainingConfig.with_word_vectors(catalogue_vectors)
    )


def test_a_model_with_word_vectors_is_served_as_trained(trained_with_vectors):
    files = training.serialize(trained_with_vectors)
    assert files.metadata["inference"]["format"] == inference_artifact.FORMAT_WORDS
    assert files.metadata["training_config"]["word_vectors"] == {
        "words": int(trained_with_vectors.config.word_vectors.hashes.shape[0]),
        "dimensions": 16,
        "weight": 1.0,
    }
    assert files.metadata["training_config"]["alpha"] == training.WORD_VECTORS_ALPHA
    served = artifact.load_inference(files.inference, files.metadata)
    texts = [item.text() for item in catalogue.generate(200, seed=5)] + EDGE_TEXTS
    np.testing.assert_allclose(
        served.scores(texts),
        trained_with_vectors.pipeline.predict_proba(texts),
        rtol=0,
        atol=inference_artifact.MAX_SCORE_DIFFERENCE,
    )
    # The saved pipeline (skops, trusted types only) scores the same, and the pair passes validation.
    from_skops = pipeline_file.load(files.model, files.metadata)
    np.testing.assert_allclose(
        from_skops.scores(texts), served.scores(texts), rtol=0, atol=inference_artifact.MAX_SCORE_DIFFERENCE
    )
    from saikika.model import validation

    assert validation.validate(files).version == files.metadata["version"]
    single = np.vstack([served.scores([t]) for t in texts])
    np.testing.assert_allclose(single, served.scores(texts), rtol=0, atol=1e-12)


def test_the_word_vectors_change_the_scores_of_title_words(trained_with_vectors):
    """The dense columns carry weight: a title of vocabulary words only is scored differently without them."""
    data = training.export_inference(trained_with_vectors.pipeline)
    scorer = inference_artifact.load(data, inference_artifact.FORMAT_WORDS)
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        without = inference_artifact.FnvHashScorer(scorer.hasher, arrays["feature_rows"], arrays["intercept"])
    titles = [item.title for item in catalogue.generate(50, seed=6)]
    assert np.abs(scorer(titles) - without(titles)).max() > 1e-3


def test_streamed_training_with_word_vectors_matches_in_memory(catalogue_vectors):
    items = list(catalogue.generate(1500, seed=11))
    config = training.TrainingConfig.with_word_vectors(catalogue_vectors)
    streamed = training.train_streaming(lambda: (items[i : i + 400] for i in range(0, len(items), 400)), config=config)
    files = training.serialize(streamed)
    assert files.metadata["inference"]["format"] == inference_artifact.FORMAT_WORDS
    served = artifact.load_inference(files.inference, files.metadata)
    test_items = list(catalogue.generate(300, seed=12))
    in_memory = artifact.load_inference(*_inference(items, config))
    from saikika.model import evaluation

    assert (
        abs(
            evaluation.evaluate(served, test_items)["micro_f1"] - evaluation.evaluate(in_memory, test_items)["micro_f1"]
        )
        <= 0.03
    )


def _inference(items, config):
    files = training.serialize(training.train(items, config=config))
    return files.inference, files.metadata


def test_an_item_with_only_a_title_or_no_title_is_predicted(trained_with_vectors):
    files = training.serialize(trained_with_vectors)
    served = artifact.load_inference(files.inference, files.metadata)
    items = [
        Item(id="t", title="防水スピーカー"),
        Item(id="d", description="防水"),
        Item(id="e", title="🙂\ud800"),
        Item(id="long", title="防水" * 500),
    ]
    for prediction in served.predict(items):
        assert all(0.0 <= s <= 1.0 for s in prediction.scores.values())
