"""`model.skops`: the fitted scikit-learn pipeline, stored with skops and loaded with an explicit list of
trusted types. A model file from a bucket is never unpickled: anything outside the list fails closed,
and the sha256 is checked before the file is parsed. Training and judging only; predictors never import it.
"""

from __future__ import annotations

import io

import skops.io as sio

from saikika.core.errors import ModelIntegrityError
from saikika.model.artifact import file_sha256, labels_and_thresholds, probe, verify, version_of
from saikika.model.label_model import LabelModel
from saikika.model.ngram_transformer import HashedCharNgrams, TitleWordVectors

# Every type inside a saikika model file beyond skops' own defaults. Anything else, a
# pickled custom object above all, makes loading fail.
TRUSTED_TYPES = [
    "scipy.sparse._csr.csr_matrix",
    f"{HashedCharNgrams.__module__}.{HashedCharNgrams.__qualname__}",
    # Versions trained with title word vectors (inference format v4).
    f"{TitleWordVectors.__module__}.{TitleWordVectors.__qualname__}",
    "sklearn.pipeline.FeatureUnion",
    # Versions trained before the vectorised featuriser (inference format v1) hold a HashingVectorizer.
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._label.LabelBinarizer",
    "builtins.float",
    "builtins.int",
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.str",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
]


def dump(pipeline) -> bytes:
    """The pipeline as skops bytes; refused at training time if it holds a type a loader would refuse."""
    buffer = io.BytesIO()
    sio.dump(pipeline, buffer)
    data = buffer.getvalue()
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ModelIntegrityError(f"model holds types outside the trusted list: {sorted(untrusted)}")
    return data


def load(data: bytes, metadata: dict, *, expected_sha256: str | None = None) -> LabelModel:
    """The full pipeline: verify the checksum, then parse with the trusted-type list only. ModelIntegrityError for
    every file that cannot be trusted or used as its metadata describes."""
    version, (labels, thresholds) = version_of(metadata), labels_and_thresholds(metadata)
    digest = file_sha256(metadata)
    verify(data, "model file", (("metadata.json", digest), ("champion pointer", expected_sha256)))
    try:
        pipeline = sio.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises TypeError subclasses for untrusted types, others for corruption
        raise ModelIntegrityError(f"model file cannot be loaded safely: {exc}") from exc
    if not callable(getattr(pipeline, "predict_proba", None)):
        raise ModelIntegrityError(f"model file holds a {type(pipeline).__name__}, not a pipeline with predict_proba")
    probe(pipeline.predict_proba, len(labels), "model file")
    return LabelModel(version, labels, thresholds, pipeline.predict_proba, backend="skops")
