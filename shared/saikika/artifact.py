"""The model artifact on disk or in a bucket: `model.skops` plus `metadata.json`.

Loading names every type it trusts and fails closed on anything else: a model file
from a bucket is never unpickled, and its sha256 is checked before it is parsed.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from saikika import inference
from saikika.errors import ModelIntegrityError
from saikika.prediction import LabelModel

if TYPE_CHECKING:
    from saikika.model import TrainedModel

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
INFERENCE_FILE = inference.INFERENCE_FILE


class ModelFiles(NamedTuple):
    """A model version's files: the skops pipeline, its metadata, and the inference arrays (if exportable)."""

    model: bytes
    metadata: dict
    inference: bytes | None = None

# Every type inside a saikika model file beyond skops' own defaults. Anything else, a
# pickled custom object above all, makes loading fail.
TRUSTED_TYPES = [
    "scipy.sparse._csr.csr_matrix",
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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    import scipy
    import sklearn

    import saikika

    return {
        "python": platform.python_version(),
        "saikika": saikika.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": _skops_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def _skops_version() -> str:
    from importlib.metadata import version

    return version("skops")


def new_version_id(sha256: str, now: datetime | None = None) -> str:
    """Sortable by time, unique by content: `20261129T031500Z-1a2b3c4d`."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{sha256[:8]}"


def serialize(trained: TrainedModel, extra: dict | None = None) -> ModelFiles:
    """The model file, its metadata (which names the sha256 of every file), and the inference arrays."""
    import skops.io as sio

    buffer = io.BytesIO()
    sio.dump(trained.pipeline, buffer)
    data = buffer.getvalue()
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        # Caught at training time, not when a predictor refuses the file later.
        raise ModelIntegrityError(f"model holds types outside the trusted list: {sorted(untrusted)}")
    digest = sha256_hex(data)
    now = datetime.now(timezone.utc)
    arrays, inference_meta = _export_inference(trained)
    metadata = {
        "version": new_version_id(digest, now),
        "created_at": now.isoformat(),
        "sha256": digest,
        "model_file": MODEL_FILE,
        "labels": trained.labels,
        "thresholds": {label: float(t) for label, t in zip(trained.labels, trained.thresholds)},
        "metrics": trained.metrics,
        "metrics_on": f"held-out split of {trained.holdout_rows} rows (stable by item id)",
        "rows_used": trained.rows_used,
        "holdout_rows": trained.holdout_rows,
        "labels_dropped": trained.labels_dropped,
        "library_versions": library_versions(),
        **({"inference": inference_meta} if inference_meta else {}),
        **(extra or {}),
    }
    return ModelFiles(data, metadata, arrays)


def _export_inference(trained: TrainedModel) -> tuple[bytes | None, dict | None]:
    """Export the pipeline as plain arrays, but only if they reproduce its scores to 1e-9."""
    arrays = inference.export(trained.pipeline)
    if arrays is None:
        return None, None
    difference = inference.max_difference(trained.pipeline, inference.load(arrays), trained.check_texts)
    if difference > inference.MAX_SCORE_DIFFERENCE:
        return None, None
    return arrays, {"file": INFERENCE_FILE, "format": inference.FORMAT, "sha256": sha256_hex(arrays),
                    "max_score_difference": difference, "checked_on_texts": len(trained.check_texts)}


def write_dir(directory: Path, files: ModelFiles) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(files.model)
    if files.inference is not None:
        (directory / INFERENCE_FILE).write_bytes(files.inference)
    # metadata.json last: it is the commit marker of a version.
    (directory / METADATA_FILE).write_text(json.dumps(files.metadata, indent=2, ensure_ascii=False) + "\n")


def read_dir(directory: Path) -> ModelFiles:
    metadata = json.loads((directory / METADATA_FILE).read_text())
    arrays = directory / INFERENCE_FILE
    return ModelFiles((directory / MODEL_FILE).read_bytes(), metadata, arrays.read_bytes() if arrays.exists() else None)


def _verify(data: bytes, what: str, expectations: tuple[tuple[str, str | None], ...]) -> None:
    actual = sha256_hex(data)
    for source, expected in expectations:
        if expected is not None and actual != expected:
            raise ModelIntegrityError(
                f"{what} sha256 {actual} does not match {expected} named by the {source}; refusing to load it"
            )


def _thresholds(metadata: dict) -> tuple[tuple[str, ...], np.ndarray]:
    labels = tuple(metadata["labels"])
    return labels, np.array([float(metadata["thresholds"][label]) for label in labels])


def load(data: bytes, metadata: dict, inference_data: bytes | None = None, *,
         expected_sha256: str | None = None) -> LabelModel:
    """The full pipeline: verify the checksum, then parse with the trusted-type list only."""
    import skops.io as sio

    _verify(data, "model file", (("metadata.json", metadata.get("sha256")), ("champion pointer", expected_sha256)))
    try:
        pipeline = sio.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises TypeError subclasses for untrusted types, others for corruption
        raise ModelIntegrityError(f"model file cannot be loaded safely: {exc}") from exc
    labels, thresholds = _thresholds(metadata)
    return LabelModel(metadata["version"], labels, thresholds, pipeline.predict_proba, backend="skops")


def load_inference(arrays: bytes, metadata: dict, *, expected_sha256: str | None = None) -> LabelModel:
    """The inference arrays only (no scikit-learn, no skops): what predictors serve."""
    declared = metadata.get("inference") or {}
    if declared.get("format") != inference.FORMAT:
        raise ModelIntegrityError(f"unknown inference format {declared.get('format')!r}")
    _verify(arrays, "inference file", (("metadata.json", declared.get("sha256")), ("champion pointer", expected_sha256)))
    try:
        scorer = inference.load(arrays)
    except (ValueError, KeyError, OSError) as exc:  # allow_pickle=False refuses object arrays with ValueError
        raise ModelIntegrityError(f"inference file cannot be loaded: {exc}") from exc
    labels, thresholds = _thresholds(metadata)
    if scorer.intercept.shape != (len(labels),):
        raise ModelIntegrityError(f"inference file has {scorer.intercept.shape[0]} labels, metadata {len(labels)}")
    return LabelModel(metadata["version"], labels, thresholds, scorer, backend="inference")
