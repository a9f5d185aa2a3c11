"""Every bad artifact is a ModelIntegrityError, and nothing else: callers of model loading catch that one type.
Each case is a version as a bucket could hand it over (a release's fixture, broken one way), fed to the loaders
that read the broken part: `pipeline_file.load` (model.skops), `artifact.load_inference` (model.npz) and
`validation.validate` (both, as the promote function and `saikika models push` run it)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import skops.io as sio

from saikika.core.errors import ModelIntegrityError, SaikikaError
from saikika.model import artifact, pipeline_file, validation
from saikika.model.artifact import ModelFiles
from tests.model_fixtures import FIXTURES
from tests.tampering import negated_weights

# The newest release's n-grams-only version (its word-vectors twin loads through the same checks).
RELEASE = sorted(path for path in FIXTURES.iterdir() if path.is_dir() and not path.name.endswith("-word-vectors"))[-1]
GOOD = artifact.read_dir(RELEASE)
LABELS = GOOD.metadata["labels"]


class Sneaky:
    """Stands for any object a bucket could hand us that is not on the trusted list."""


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def metadata(**changes) -> ModelFiles:
    return GOOD._replace(metadata={**GOOD.metadata, **changes})


def model_file(data: bytes) -> ModelFiles:
    """Another model.skops, its checksum updated to match (as an attacker with write access would)."""
    return GOOD._replace(model=data, metadata={**GOOD.metadata, "sha256": artifact.sha256_hex(data)})


def inference_file(data: bytes) -> ModelFiles:
    entry = {**GOOD.metadata["inference"], "sha256": artifact.sha256_hex(data)}
    return GOOD._replace(inference=data, metadata={**GOOD.metadata, "inference": entry})


def arrays(**changes) -> bytes:
    """model.npz with some arrays replaced (None: left out)."""
    with np.load(io.BytesIO(GOOD.inference), allow_pickle=False) as loaded:
        content = {name: loaded[name] for name in loaded.files}
    content.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **{name: value for name, value in content.items() if value is not None})
    return buffer.getvalue()


def skops_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    sio.dump(obj, buffer)
    return buffer.getvalue()


ALL = ("pipeline", "inference", "validate")
MODEL = ("pipeline", "validate")
INFERENCE = ("inference", "validate")
BROKEN = {
    # metadata.json of the wrong shape
    "metadata a list": (GOOD._replace(metadata=[GOOD.metadata]), ALL),
    "no version": (GOOD._replace(metadata=_without(GOOD.metadata, "version")), ALL),
    "version a number": (metadata(version=7), ALL),
    "no labels": (GOOD._replace(metadata=_without(GOOD.metadata, "labels")), ALL),
    "labels a string": (metadata(labels="handmade"), ALL),
    "labels empty": (metadata(labels=[]), ALL),
    "a label a number": (metadata(labels=[*LABELS[:-1], 3]), ALL),
    "a label twice": (metadata(labels=[*LABELS, LABELS[0]]), ALL),
    "no thresholds": (GOOD._replace(metadata=_without(GOOD.metadata, "thresholds")), ALL),
    "thresholds a list": (metadata(thresholds=[0.5] * len(LABELS)), ALL),
    "a threshold missing": (metadata(thresholds=_without(GOOD.metadata["thresholds"], LABELS[0])), ALL),
    "a threshold a string": (metadata(thresholds={**GOOD.metadata["thresholds"], LABELS[0]: "0.5"}), ALL),
    "a threshold null": (metadata(thresholds={**GOOD.metadata["thresholds"], LABELS[0]: None}), ALL),
    "a threshold true": (metadata(thresholds={**GOOD.metadata["thresholds"], LABELS[0]: True}), ALL),
    "a threshold above 1": (metadata(thresholds={**GOOD.metadata["thresholds"], LABELS[0]: 1.5}), ALL),
    "labels the arrays do not have": (
        metadata(labels=LABELS[:-1], thresholds=_without(GOOD.metadata["thresholds"], LABELS[-1])),
        ALL,
    ),
    # checksums missing or wrong
    "model sha256 missing": (GOOD._replace(metadata=_without(GOOD.metadata, "sha256")), MODEL),
    "model sha256 not hex": (metadata(sha256="z" * 64), MODEL),
    "model file changed, checksum not": (GOOD._replace(model=GOOD.model[:-10] + b"0123456789"), MODEL),
    "inference sha256 missing": (metadata(inference=_without(GOOD.metadata["inference"], "sha256")), INFERENCE),
    "inference entry a string": (metadata(inference="model.npz"), INFERENCE),
    "inference format unknown": (metadata(inference={**GOOD.metadata["inference"], "format": "v9"}), INFERENCE),
    "inference file changed, checksum not": (GOOD._replace(inference=GOOD.inference + b"x"), INFERENCE),
    # model.skops with a matching checksum and the wrong contents
    "model file truncated": (model_file(GOOD.model[: len(GOOD.model) // 2]), MODEL),
    "model file a pickle": (model_file(pickle.dumps({"anything": 1})), MODEL),
    "model file with an untrusted type": (model_file(skops_bytes({"model": Sneaky()})), MODEL),
    "model file a plain dict": (model_file(skops_bytes({"labels": ["a"]})), MODEL),
    "model file not a zip": (model_file(b"not a model at all"), MODEL),
    # model.npz with a matching checksum and the wrong contents
    "arrays truncated": (inference_file(GOOD.inference[: len(GOOD.inference) // 2]), INFERENCE),
    "arrays not a zip": (inference_file(b"\x93NUMPY garbage"), INFERENCE),
    "arrays a pickle": (inference_file(pickle.dumps({"feature_rows": [1.0]})), INFERENCE),
    "arrays with an object array": (inference_file(arrays(feature_rows=np.array([Sneaky()], dtype=object))), INFERENCE),
    "arrays without feature rows": (inference_file(arrays(feature_rows=None)), INFERENCE),
    "feature rows of text": (inference_file(arrays(feature_rows=np.full((1024, len(LABELS) + 1), "x"))), INFERENCE),
    "feature rows of the wrong shape": (inference_file(arrays(feature_rows=np.zeros((7, 3)))), INFERENCE),
    "intercepts of the wrong shape": (inference_file(arrays(intercept=np.zeros((2, 2)))), INFERENCE),
    "bits not a number": (inference_file(arrays(bits=np.asarray("ten"))), INFERENCE),
    "ngram range a scalar": (inference_file(arrays(ngram_range=np.asarray(3))), INFERENCE),
    "weights that are not finite": (
        inference_file(arrays(intercept=np.full(len(LABELS), np.nan))),
        INFERENCE,
    ),
    # arrays that load and score, but not as the pipeline judged: only the comparison can tell
    "weights negated": (negated_weights(GOOD), ("validate",)),
}
LOADERS = {
    "pipeline": lambda files: pipeline_file.load(files.model, files.metadata),
    "inference": lambda files: artifact.load_inference(files.inference, files.metadata),
    "validate": validation.validate,
}
CASES = [(name, loader) for name, (_, loaders) in BROKEN.items() for loader in loaders]


def test_the_good_release_loads_everywhere():
    # Each broken case differs from this in one way: the refusals below are about that way.
    for load in LOADERS.values():
        assert load(GOOD).version == GOOD.metadata["version"]


@pytest.mark.parametrize("case, loader", CASES, ids=[f"{loader}: {case}" for case, loader in CASES])
def test_a_bad_artifact_is_a_model_integrity_error_and_nothing_else(case, loader):
    files, _ = BROKEN[case]
    # pytest.raises lets any other exception through, and that fails the test.
    with pytest.raises(ModelIntegrityError) as raised:
        LOADERS[loader](files)
    assert isinstance(raised.value, SaikikaError) and isinstance(raised.value, ValueError)
    assert len(str(raised.value)) > 20  # says what is wrong


@pytest.mark.parametrize("text", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"a string"'])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, text):
    artifact.write_dir(tmp_path, GOOD)
    (tmp_path / "metadata.json").write_bytes(text)
    with pytest.raises(ModelIntegrityError, match="metadata.json"):
        artifact.read_dir(tmp_path)
