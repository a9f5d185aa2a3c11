"""A model version's files, on disk or in a bucket: `model.skops` (the fitted pipeline, for training-side
checks), `model.npz` (the inference artifact predictors serve) and `metadata.json` (written last; it names
the sha256 of every file).

Loading the inference artifact needs numpy alone; the skops side is `saikika.model.pipeline_file`.
Every file's checksum is verified before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from saikika.core import jsonl
from saikika.core.errors import ModelIntegrityError, NotJson
from saikika.core.objects import INFERENCE_FILE, METADATA_FILE, MODEL_FILE
from saikika.model import inference_artifact
from saikika.model.label_model import LabelModel, Scorer


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
    metadata = parse_metadata((directory / METADATA_FILE).read_bytes())
    arrays = directory / INFERENCE_FILE
    return ModelFiles((directory / MODEL_FILE).read_bytes(), metadata, arrays.read_bytes() if arrays.exists() else None)


def parse_metadata(data: bytes | str) -> dict:
    """metadata.json as a dict; ModelIntegrityError if it is not a JSON object."""
    try:
        metadata = jsonl.loads(data)
    except (NotJson, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"metadata.json is not JSON: {exc}") from exc
    return _object(metadata)


def verify(data: bytes, what: str, expectations: tuple[tuple[str, str | None], ...]) -> None:
    """Raise ModelIntegrityError unless `data` has every expected sha256 (None: nothing expected there)."""
    actual = sha256_hex(data)
    for source, expected in expectations:
        if expected is not None and actual != expected:
            raise ModelIntegrityError(
                f"{what} sha256 {actual} does not match {expected} named by the {source}; refusing to load it"
            )


def _object(metadata: object) -> dict:
    if not isinstance(metadata, dict):
        raise ModelIntegrityError(f"metadata.json must be a JSON object, not {type(metadata).__name__}")
    return metadata


def _text(mapping: dict, key: str, where: str = "metadata.json") -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise ModelIntegrityError(f"{where} needs {key!r} as a non-empty string, got {value!r}")
    return value


def version_of(metadata: dict) -> str:
    return _text(_object(metadata), "version")


def file_sha256(metadata: dict, where: str = "metadata.json") -> str:
    """The sha256 a file's entry names: 64 hex digits (a file without one would be parsed unchecked)."""
    digest = _text(metadata, "sha256", where)
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ModelIntegrityError(f"{where} names sha256 {digest!r}, not 64 lower-case hex digits")
    return digest


def labels_and_thresholds(metadata: dict) -> tuple[tuple[str, ...], np.ndarray]:
    """The labels and their thresholds, in order; ModelIntegrityError unless the labels are distinct non-empty
    strings and each has a threshold that is a number in [0, 1]."""
    labels, thresholds = _object(metadata).get("labels"), metadata.get("thresholds")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label for label in labels):
        raise ModelIntegrityError(f"metadata.json needs 'labels' as a non-empty list of strings, got {labels!r:.200}")
    if len(set(labels)) != len(labels):
        raise ModelIntegrityError("metadata.json lists a label twice")
    if not isinstance(thresholds, dict):
        raise ModelIntegrityError(f"metadata.json needs 'thresholds' as an object, got {type(thresholds).__name__}")
    for label in labels:
        value = thresholds.get(label)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ModelIntegrityError(f"metadata.json: the threshold of {label!r} is {value!r}, not a number in [0, 1]")
    return tuple(labels), np.array([float(thresholds[label]) for label in labels])


_PROBE_TEXT = "probe プローブ"
# What numpy and the scorers raise for arrays that do not fit their format (allow_pickle=False refuses object
# arrays with ValueError; bytes that are not a zip raise BadZipFile or EOFError).
_UNFIT_ARRAYS = (ValueError, KeyError, TypeError, IndexError, OSError, EOFError, zipfile.BadZipFile)


def probe(scorer: Scorer, n_labels: int, what: str) -> None:
    """Files that loaded can still fail to score (a wrong dtype, shapes that disagree with each other or with the
    labels): one short text scored at load refuses such a version then, not on each request."""
    try:
        scores = np.asarray(scorer([_PROBE_TEXT]))
    except (*_UNFIT_ARRAYS, AttributeError) as exc:
        raise ModelIntegrityError(f"{what} cannot score: {exc}") from exc
    if scores.shape != (1, n_labels) or not np.isfinite(scores).all():
        raise ModelIntegrityError(f"{what} gives scores of shape {scores.shape}, not {n_labels} finite probabilities")


def load_inference(arrays: bytes, metadata: dict, *, expected_sha256: str | None = None) -> LabelModel:
    """The inference arrays only (no scikit-learn, no skops): what predictors serve. ModelIntegrityError for every
    artifact that cannot be served as its metadata describes."""
    version, (labels, thresholds) = version_of(metadata), labels_and_thresholds(metadata)
    declared = metadata.get("inference")
    if not isinstance(declared, dict):
        raise ModelIntegrityError(f"metadata.json names no inference artifact (inference: {declared!r:.100})")
    if declared.get("format") not in inference_artifact.FORMATS:
        raise ModelIntegrityError(f"unknown inference format {declared.get('format')!r}")
    digest = file_sha256(declared, "metadata.json's inference entry")
    verify(arrays, "inference file", (("metadata.json", digest), ("champion pointer", expected_sha256)))
    try:
        scorer = inference_artifact.load(arrays, declared["format"])
    except _UNFIT_ARRAYS as exc:
        raise ModelIntegrityError(f"inference file cannot be loaded: {exc}") from exc
    if scorer.intercept.shape != (len(labels),):
        raise ModelIntegrityError(f"inference file has {scorer.intercept.shape} intercepts for {len(labels)} labels")
    probe(scorer, len(labels), "inference file")
    return LabelModel(version, labels, thresholds, scorer, backend="inference")
