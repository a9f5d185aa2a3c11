import io
import json

import numpy as np
import pytest
import skops.io as sio

from saikika.core import splits
from saikika.core.errors import ModelIntegrityError
from saikika.core.items import Item
from saikika.model import artifact, catalogue, evaluation, pipeline_file, training
from saikika.model.training import TrainingDataError, train
from tests.tampering import negated_weights


def test_trained_model_learns_the_catalogue(trained_small):
    m = trained_small.metrics
    assert set(trained_small.labels) == set(catalogue.FEATURES)
    assert m["micro_f1"] > 0.85 and m["top1_accuracy"] > 0.85
    assert trained_small.tuning_rows > 100


def test_predictions_follow_the_contract(model_files):
    data, metadata, _ = model_files
    loaded = pipeline_file.load(data, metadata, expected_sha256=metadata["sha256"])
    items = [Item(id="1", title="防水 ワイヤレス スピーカー"), Item(id="2", title="handmade vintage mug")]
    p1, p2 = loaded.predict(items)
    assert set(p1.scores) == set(loaded.labels) and set(p2.scores) == set(loaded.labels)
    assert {"waterproof", "wireless"} <= set(p1.labels)
    assert {"handmade", "vintage"} <= set(p2.labels)
    for p in (p1, p2):
        ordered = [p.scores[label] for label in p.labels]
        assert ordered == sorted(ordered, reverse=True)
        for label in p.labels:
            assert p.scores[label] >= metadata["thresholds"][label] - 1e-6


def test_metadata_names_everything(model_files):
    data, metadata, _ = model_files
    for key in ("version", "created_at", "sha256", "labels", "thresholds", "metrics", "rows_used", "library_versions"):
        assert key in metadata
    assert metadata["sha256"] == artifact.sha256_hex(data)
    assert set(metadata["metrics"]) >= {"top1_accuracy", "micro_f1", "macro_f1", "per_label"}
    json.dumps(metadata)  # serialisable as is


def test_tampered_model_is_refused(model_files):
    data, metadata, _ = model_files
    tampered = data[:-10] + b"0123456789"
    with pytest.raises(ModelIntegrityError, match="does not match"):
        pipeline_file.load(tampered, metadata)
    with pytest.raises(ModelIntegrityError, match="champion pointer"):
        pipeline_file.load(data, metadata, expected_sha256="0" * 64)


class Sneaky:
    """Stands for any object a bucket could hand us that is not on the trusted list."""

    def __init__(self):
        self.payload = "x"


def test_untrusted_types_fail_closed(model_files):
    _, metadata, _ = model_files
    buffer = io.BytesIO()
    sio.dump({"model": Sneaky()}, buffer)
    data = buffer.getvalue()
    with pytest.raises(ModelIntegrityError, match="cannot be loaded safely"):
        pipeline_file.load(data, {**metadata, "sha256": artifact.sha256_hex(data)})


def test_pickle_file_is_refused(model_files):
    import pickle

    _, metadata, _ = model_files
    data = pickle.dumps({"anything": 1})
    with pytest.raises(ModelIntegrityError):
        pipeline_file.load(data, {**metadata, "sha256": artifact.sha256_hex(data)})


def test_training_is_deterministic():
    items = list(catalogue.generate(400, seed=3))
    a, b = train(items), train(items)
    texts = [item.text() for item in items[:20]]
    np.testing.assert_allclose(a.pipeline.predict_proba(texts), b.pipeline.predict_proba(texts))
    np.testing.assert_array_equal(a.thresholds, b.thresholds)


def test_rare_labels_are_dropped_with_reason():
    items = list(catalogue.generate(300, seed=5))
    items.append(Item(id="rare-1", title="one of a kind", labels=("unique",)))
    trained = train(items)
    assert "unique" not in trained.labels
    assert "fewer than" in trained.labels_dropped["unique"]


def test_too_little_data_is_a_clear_error():
    with pytest.raises(TrainingDataError, match="at least 2 labels"):
        train([Item(id=str(i), title="t", labels=("a",)) for i in range(10)])


def test_tuning_split_is_stable_by_id():
    assert splits.in_tuning_split("item-1") == splits.in_tuning_split("item-1")
    share = np.mean([splits.in_tuning_split(f"id-{i}") for i in range(20000)])
    assert 0.13 < share < 0.17


def test_evaluate_reports_unknown_labels(model_files):
    data, metadata, _ = model_files
    loaded = pipeline_file.load(data, metadata)
    items = list(catalogue.generate(200, seed=99))
    items.append(Item(id="z", title="限定品 腕時計", labels=("limited-edition",)))
    result = evaluation.evaluate(loaded, items)
    assert result["labels_unknown_to_model"] == ["limited-edition"]
    assert result["rows"] == 201
    assert 0.8 < result["micro_f1"] <= 1.0


# Texts the serving scorer must handle as the pipeline does: very short and very long, any Unicode, empty fields.
EDGE_TEXTS = [
    "",
    "   ",
    "\n\n",
    "a",
    "ＡＢＣ　全角\t\tタブ\n\n改行",
    "🙂 emoji ✨ 👩‍👩‍👧",
    "e\u0301 combining",
    "\ud800 lone surrogate",
    "x" * 5000,
    "防水" * 10000,
]


def test_inference_arrays_score_as_the_pipeline(trained_small, model_files):
    from saikika.model import inference_artifact

    _, metadata, arrays = model_files
    bound = inference_artifact.MAX_SCORE_DIFFERENCE
    assert metadata["inference"]["format"] == inference_artifact.FORMAT
    assert arrays is not None and metadata["inference"]["sha256"] == artifact.sha256_hex(arrays)
    assert metadata["inference"]["max_score_difference"] <= bound
    texts = [item.text() for item in catalogue.generate(300, seed=123)] + EDGE_TEXTS
    scorer = inference_artifact.load(arrays)
    assert training.max_difference(trained_small.pipeline, scorer, texts) <= bound
    # One text at a time gives the same scores as the batch (nothing leaks between texts of a batch).
    one_by_one = np.vstack([scorer([text]) for text in texts])
    np.testing.assert_allclose(one_by_one, scorer(texts), rtol=0, atol=1e-7)


def test_items_with_empty_fields_and_odd_unicode_are_predicted(model_files):
    served = artifact.load_inference(model_files.inference, model_files.metadata)
    items = [
        Item(id="t", title="🙂"),
        Item(id="d", description="\ud800"),
        Item(id="g", tags=("ｶﾀｶﾅ",)),
        Item(id="long", description="防水" * 10_000),
    ]
    for prediction in served.predict(items):
        assert set(prediction.scores) == set(served.labels)
        assert all(0.0 <= score <= 1.0 for score in prediction.scores.values())


def test_a_previous_format_artifact_still_loads_and_scores_as_its_pipeline():
    from saikika.model import inference_artifact
    from tests import legacy_v1

    items = list(catalogue.generate(600, seed=8))
    files, pipeline = legacy_v1.build(items, sorted(catalogue.FEATURES))
    served = artifact.load_inference(files.inference, files.metadata)
    assert files.metadata["inference"]["format"] == inference_artifact.FORMAT_V1
    texts = [item.text() for item in catalogue.generate(100, seed=9)] + EDGE_TEXTS[:-1]
    # scikit-learn cannot hash a lone surrogate (UnicodeEncodeError); the v1 scorer can, and must not crash.
    plain = [t for t in texts if "\ud800" not in t]
    np.testing.assert_allclose(served.scores(plain), pipeline.predict_proba(plain), rtol=0, atol=1e-9)
    assert np.isfinite(served.scores(["\ud800 lone surrogate", "\udfff"])).all()
    assert validation_passes(files)


def test_a_v2_artifact_still_loads_and_scores_as_its_pipeline(trained_small):
    """Format v2 (float32 coefficients and IDF apart) is scored by the v3 code with float64 weights."""
    from saikika.model import inference_artifact
    from tests import legacy_v2

    files, pipeline = legacy_v2.build(trained_small.pipeline, trained_small.labels)
    served = artifact.load_inference(files.inference, files.metadata)
    assert files.metadata["inference"]["format"] == inference_artifact.FORMAT_V2
    texts = [item.text() for item in catalogue.generate(100, seed=9)] + EDGE_TEXTS
    np.testing.assert_allclose(
        served.scores(texts), pipeline.predict_proba(texts), rtol=0, atol=inference_artifact.MAX_SCORE_DIFFERENCE
    )
    assert validation_passes(files)


def validation_passes(files) -> bool:
    from saikika.model import validation

    return validation.validate(files).version == files.metadata["version"]


def test_inference_arrays_are_checked_and_never_unpickled(model_files):
    import numpy as np

    _, metadata, arrays = model_files
    with pytest.raises(ModelIntegrityError, match="does not match"):
        artifact.load_inference(arrays + b"x", metadata)
    buffer = io.BytesIO()
    np.savez(buffer, idf=np.array([Sneaky()], dtype=object))  # an object array would need pickle
    evil = buffer.getvalue()
    evil_meta = {**metadata, "inference": {**metadata["inference"], "sha256": artifact.sha256_hex(evil)}}
    with pytest.raises(ModelIntegrityError, match="cannot be loaded"):
        artifact.load_inference(evil, evil_meta)


def test_serving_modules_do_not_import_scikit_learn():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        "import sys, runpy\n"
        "for name in ('predict', 'predict_http'):\n"
        "    runpy.run_path(f'functions/{name}/main.py')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops', 'scipy', 'matplotlib'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    env = {
        "GOOGLE_CLOUD_PROJECT": "p",
        "SAIKIKA_DATA_BUCKET": "d",
        "SAIKIKA_MODELS_BUCKET": "m",
        "SAIKIKA_PREDICTIONS_BUCKET": "x",
        "PATH": "/usr/bin:/bin",
        # The storage client wants credentials when built; an emulator address needs none and is never called.
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_refuses_what_predictors_could_not_serve_faithfully(model_files):
    """One routine for the promote function and `saikika models push/promote`: the arrays predictors serve must
    exist and score as the pipeline does, even when every checksum has been updated to match."""
    from saikika.model import validation

    assert validation.validate(model_files).version == model_files.metadata["version"]
    with pytest.raises(ModelIntegrityError, match="missing"):
        validation.validate(model_files._replace(inference=None))
    plain = {k: v for k, v in model_files.metadata.items() if k != "inference"}
    with pytest.raises(ModelIntegrityError, match="names no inference artifact"):
        validation.validate(model_files._replace(metadata=plain))
    tampered = negated_weights(model_files)
    with pytest.raises(ValueError, match="differ"):
        validation.validate(tampered)


# ---- the governed label set -----------------------------------------------------------------------
from collections import Counter  # noqa: E402

from saikika.model.training import LabelPolicy  # noqa: E402


def test_label_policy_keeps_the_best_supported_and_says_why_it_left_the_rest_out():
    counts = Counter({"a": 50, "b": 40, "c": 40, "d": 9, "e": 2, "known-rare": 3})
    labels, dropped = LabelPolicy(max_labels=2, new_label_min_support=10, known=frozenset({"known-rare"})).choose(
        counts
    )
    assert labels == ["a", "b"]  # 40 ties: by name
    assert dropped == {
        "c": "support 40 ranks 3: beyond SAIKIKA_MAX_LABELS=2",
        "d": "new label: 9 example(s), fewer than 10",
        "e": "new label: 2 example(s), fewer than 10",
        "known-rare": "support 3 ranks 4: beyond SAIKIKA_MAX_LABELS=2",
    }
    labels, dropped = LabelPolicy(max_labels=256, new_label_min_support=10, known=frozenset({"known-rare"})).choose(
        counts
    )
    assert labels == ["a", "b", "c", "known-rare"]  # a label the champion knows needs only 3
    many = Counter({f"l{i:04d}": 5 + i for i in range(2000)})
    labels, dropped = LabelPolicy().choose(many)  # never fails on the number of labels
    assert len(labels) == 256 and len(dropped) == 1744 and labels[0] == "l1744"


def test_the_report_plots_the_best_supported_labels_and_never_fails_on_their_number():
    from saikika.model import report

    rng = np.random.default_rng(0)
    labels = [f"l{i:03d}" for i in range(900)]
    truth = (rng.random((500, 900)) < np.linspace(0.001, 0.2, 900)).astype(int)
    pages = report.build("v", rng.random((500, 900)), truth, np.full(900, 0.5), labels)
    assert set(pages) == {"index.html", "roc.png", "scores.png", "per_label.json"}
    assert len(json.loads(pages["per_label.json"])) == 900  # the table keeps every label
    shown = report.plotted(truth, labels, report.PLOTTED_LABELS)
    assert len(shown) == 24 and min(truth[:, shown].sum(axis=0)) >= max(np.delete(truth, shown, axis=1).sum(axis=0))


@pytest.mark.parametrize("block", [1, 1000, training._TFIDF_BLOCK])
def test_the_fits_tfidf_is_scikit_learns(monkeypatch, block):
    """training._tfidf computes what TfidfTransformer.transform does (sublinear tf, idf, l2), empty rows included,
    in blocks of rows of any size."""
    from sklearn.feature_extraction.text import TfidfTransformer

    from saikika.model.ngram_transformer import HashedCharNgrams

    monkeypatch.setattr(training, "_TFIDF_BLOCK", block)
    texts = ["", ""] + [item.text() for item in catalogue.generate(300, seed=5)] + EDGE_TEXTS + [""]
    counts = HashedCharNgrams().transform(texts)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    ours, theirs = training._tfidf(counts, tfidf), tfidf.transform(counts)
    assert abs(ours - theirs).max() <= 1e-12 and ours.shape == theirs.shape


@pytest.mark.parametrize("block", [1, 50, 4000])
def test_scoring_in_blocks_of_rows_does_not_change_the_scores(model_files, monkeypatch, block):
    """The scorer sums a chunk's rows a block at a time (wide models keep their temporaries bounded)."""
    from saikika.model import inference_artifact

    texts = [item.text() for item in catalogue.generate(60, seed=21)] + EDGE_TEXTS
    scorer = inference_artifact.load(model_files.inference)
    whole = scorer(texts)
    monkeypatch.setattr(inference_artifact, "_SCORE_BLOCK", block)
    np.testing.assert_array_equal(scorer(texts), whole)
