"""Model files tampered with the way an attacker with write access to a bucket would: valid formats and
matching checksums, wrong contents."""

from __future__ import annotations

import io

import numpy as np

from saikika.model import artifact
from saikika.model.artifact import ModelFiles


def negated_weights(files: ModelFiles, version: str | None = None) -> ModelFiles:
    """The same version with every weight of model.npz negated and metadata.json's checksum updated to match
    (predictors would serve inverted scores if nothing compared the arrays with the pipeline)."""
    with np.load(io.BytesIO(files.inference), allow_pickle=False) as arrays:
        negated = {name: arrays[name] for name in arrays.files}
    negated["feature_rows"][:, :-1] *= -1  # every label's weights; the IDF column kept
    buffer = io.BytesIO()
    np.savez(buffer, **negated)
    tampered = buffer.getvalue()
    metadata = {
        **files.metadata,
        **({"version": version} if version else {}),
        "inference": {**files.metadata["inference"], "sha256": artifact.sha256_hex(tampered)},
    }
    return files._replace(metadata=metadata, inference=tampered)
