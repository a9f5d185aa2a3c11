"""A model version's files, on disk or in a bucket: `model.skops` (the fitted pipeline, for training-side
checks), `model.npz` (the inference artifact predictors serve) and `metadata.json` (written last; it names
the sha256 of every file).

Loading the inference artifact needs numpy alone; the skops side is `saikika.model.pipeline_file`.
Every file's checksum is verified before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from saikika.core.errors import ModelIntegrityError
from saikika.core.objects import INFERENCE_FILE, METADATA_FILE, MODEL_FILE
from saikika.model import inference_artifact
from saikika.model.label_model import LabelModel


class ModelFiles(NamedTuple):
    """A model version's files: the skops pipeline, its metadata, and the inference arrays."""

    model: bytes
    metadata: dict
    inference: bytes | None = None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_version_id(sha256: str, now: datetime | None = None) -> str:
    """Sortable by time, unique by content: `20261129T031500Z-1a2b3c4d`."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{sha256[:8]}"


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


def verify(data: bytes, what: str, expectations: tuple[tuple[str, str | None], ...]) -> None:
    """Raise ModelIntegrityError unless `data` has every expected sha256 (None: nothing expected there)."""
    actual = sha256_hex(data)
    for source, expected in expectations:
        if expected is not None and actual != expected:
            raise ModelIntegrityError(
                f"{what} sha256 {actual} does not match {expected} named by the {source}; refusing to load it"
            )


def labels_and_thresholds(metadata: dict) -> tuple[tuple[str, ...], np.ndarray]:
    labels = tuple(metadata["labels"])
    return labels, np.array([float(metadata["thresholds"][label]) for label in labels])


def load_inference(arrays: bytes, metadata: dict, *, expected_sha256: str | None = None) -> LabelModel:
    """The inference arrays only (no scikit-learn, no skops): what predictors serve."""
    declared = metadata.get("inference") or {}
    if declared.get("format") not in inference_artifact.FORMATS:
        raise ModelIntegrityError(f"unknown inference format {declared.get('format')!r}")
    verify(arrays, "inference file", (("metadata.json", declared.get("sha256")), ("champion pointer", expected_sha256)))
    try:
        scorer = inference_artifact.load(arrays, declared["format"])
    except (ValueError, KeyError, OSError) as exc:  # allow_pickle=False refuses object arrays with ValueError
        raise ModelIntegrityError(f"inference file cannot be loaded: {exc}") from exc
    labels, thresholds = labels_and_thresholds(metadata)
    if scorer.intercept.shape != (len(labels),):
        raise ModelIntegrityError(f"inference file has {scorer.intercept.shape[0]} labels, metadata {len(labels)}")
    return LabelModel(metadata["version"], labels, thresholds, scorer, backend="inference")
