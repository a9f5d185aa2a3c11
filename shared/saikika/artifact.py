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

import numpy as np
import skops.io as sio

from saikika.errors import ModelIntegrityError
from saikika.model import LabelModel, TrainedModel

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"

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


def serialize(trained: TrainedModel, extra: dict | None = None) -> tuple[bytes, dict]:
    """The model file's bytes and its metadata (which names the file's sha256)."""
    buffer = io.BytesIO()
    sio.dump(trained.pipeline, buffer)
    data = buffer.getvalue()
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        # Caught at training time, not when a predictor refuses the file later.
        raise ModelIntegrityError(f"model holds types outside the trusted list: {sorted(untrusted)}")
    digest = sha256_hex(data)
    now = datetime.now(timezone.utc)
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
        **(extra or {}),
    }
    return data, metadata


def write_dir(directory: Path, data: bytes, metadata: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(data)
    # metadata.json last: it is the commit marker of a version.
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")


def read_dir(directory: Path) -> tuple[bytes, dict]:
    metadata = json.loads((directory / METADATA_FILE).read_text())
    return (directory / MODEL_FILE).read_bytes(), metadata


def load(data: bytes, metadata: dict, expected_sha256: str | None = None) -> LabelModel:
    """Verify the checksum, then parse with the trusted-type list only."""
    actual = sha256_hex(data)
    for source, expected in (("metadata.json", metadata.get("sha256")), ("champion pointer", expected_sha256)):
        if expected is not None and actual != expected:
            raise ModelIntegrityError(
                f"model file sha256 {actual} does not match {expected} named by the {source}; refusing to load it"
            )
    try:
        pipeline = sio.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises TypeError subclasses for untrusted types, others for corruption
        raise ModelIntegrityError(f"model file cannot be loaded safely: {exc}") from exc
    labels = tuple(metadata["labels"])
    thresholds = np.array([float(metadata["thresholds"][label]) for label in labels])
    return LabelModel(version=metadata["version"], labels=labels, thresholds=thresholds, pipeline=pipeline)
