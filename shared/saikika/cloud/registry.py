"""Model versions and the champion pointer in the models bucket (layout: `saikika.core.objects`).

A version is `models/<version>/` with `metadata.json` written last (its commit marker). The pointer
`models/champion.json` (`{"version", "sha256", "inference_sha256", "promoted_at", "reason", "history"}`)
only ever changes by compare-and-swap on its generation; its `history` key lists the previous champions,
oldest first (what rollback goes back to). Every decision is also kept as one object in the decision log,
`models/history/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from google.cloud import storage

from saikika.cloud import gcs
from saikika.core import objects
from saikika.model.artifact import ModelFiles, verify
from saikika.model.word_vectors import WordVectors

# How many previous champions the pointer remembers for rollback.
PREVIOUS_CHAMPIONS_KEPT = 50


@dataclass(frozen=True)
class Champion:
    version: str
    sha256: str
    generation: int
    pointer: dict

    @property
    def inference_sha256(self) -> str | None:
        return self.pointer.get("inference_sha256")

    @property
    def previous_champions(self) -> list[dict]:
        return list(self.pointer.get("history", []))


class ChampionChanged(Exception):
    """The pointer moved between read and write: re-read and decide again."""


def push(
    bucket: storage.Bucket,
    data: bytes,
    metadata: dict,
    inference: bytes | None = None,
    extra_files: dict[str, tuple[bytes, str]] | None = None,
) -> str:
    """Upload a version, create-only: the model, the inference arrays, any extra files (name → bytes,
    content type), and metadata.json last, since its appearance is what commits the version."""
    version = metadata["version"]
    gcs.create_only(bucket, objects.version_file(version, objects.MODEL_FILE), data, "application/octet-stream")
    if inference is not None:
        gcs.create_only(
            bucket, objects.version_file(version, objects.INFERENCE_FILE), inference, "application/octet-stream"
        )
    for name, (content, content_type) in (extra_files or {}).items():
        gcs.create_only(bucket, objects.version_file(version, name), content, content_type)
    gcs.create_json(bucket, objects.version_file(version, objects.METADATA_FILE), metadata)
    return version


def read_champion(bucket: storage.Bucket, patience: gcs.Patience = gcs.PATIENT) -> Champion | None:
    found = gcs.read_json(bucket, objects.CHAMPION_OBJECT, patience)
    if found is None:
        return None
    pointer, generation = found
    return Champion(version=pointer["version"], sha256=pointer["sha256"], generation=generation, pointer=pointer)


def set_champion(bucket: storage.Bucket, metadata: dict, expected: Champion | None, reason: str) -> Champion:
    """Compare-and-swap the pointer: succeeds only if it is still `expected` (None: still absent)."""
    previous = expected.previous_champions if expected else []
    if expected:
        previous.append(
            {
                k: expected.pointer[k]
                for k in ("version", "sha256", "inference_sha256", "promoted_at")
                if k in expected.pointer
            }
        )
    pointer = {
        "version": metadata["version"],
        "sha256": metadata["sha256"],
        "inference_sha256": (metadata.get("inference") or {}).get("sha256"),
        "reason": reason,
        "history": previous[-PREVIOUS_CHAMPIONS_KEPT:],
    }
    return _swap(bucket, pointer, expected)


def rollback(bucket: storage.Bucket, expected: Champion) -> Champion:
    """Point back at the previous champion (also a compare-and-swap)."""
    previous = expected.previous_champions
    if not previous:
        raise ValueError(f"{expected.version} has no previous champion to roll back to")
    restored = previous.pop()
    pointer = {
        "version": restored["version"],
        "sha256": restored["sha256"],
        "inference_sha256": restored.get("inference_sha256"),
        "reason": f"rolled back from {expected.version}",
        "history": previous,
    }
    return _swap(bucket, pointer, expected)


def _swap(bucket: storage.Bucket, pointer: dict, expected: Champion | None) -> Champion:
    pointer = {**pointer, "promoted_at": datetime.now(UTC).isoformat()}
    generation = gcs.write_if_generation(
        bucket, objects.CHAMPION_OBJECT, gcs.to_json(pointer), gcs.JSON, expected.generation if expected else 0
    )
    if generation is None:
        raise ChampionChanged(f"{objects.CHAMPION_OBJECT} changed since it was read")
    return Champion(version=pointer["version"], sha256=pointer["sha256"], generation=generation, pointer=pointer)


def read_metadata(bucket: storage.Bucket, version: str, patience: gcs.Patience = gcs.PATIENT) -> dict | None:
    found = gcs.read_json(bucket, objects.version_file(version, objects.METADATA_FILE), patience)
    return None if found is None else found[0]


def read_decision(bucket: storage.Bucket, version: str) -> dict | None:
    """The promote function's verdict on a version; None until it has been judged."""
    found = gcs.read_json(bucket, objects.version_file(version, objects.DECISION_FILE))
    return None if found is None else found[0]


def read_file(bucket: storage.Bucket, version: str, name: str, patience: gcs.Patience = gcs.PATIENT) -> bytes | None:
    found = gcs.read(bucket, objects.version_file(version, name), patience)
    return None if found is None else found[0]


def read_version(bucket: storage.Bucket, version: str) -> ModelFiles | None:
    """A committed version's files; None if its metadata or model file is absent."""
    metadata = read_metadata(bucket, version)
    if metadata is None:
        return None
    model = read_file(bucket, version, objects.MODEL_FILE)
    if model is None:
        return None
    arrays = read_file(bucket, version, objects.INFERENCE_FILE) if metadata.get("inference") else None
    return ModelFiles(model, metadata, arrays)


def record_decision(bucket: storage.Bucket, entry: dict) -> str:
    """Append one decision (judged, promoted by hand, rolled back) to the decision log: one object each."""
    name = objects.decision_log_entry(datetime.now(UTC), entry.get("version", "unknown"))
    gcs.create_json(bucket, name, entry)
    return name


def decision_log(bucket: storage.Bucket) -> list[dict]:
    return [json.loads(blob.download_as_bytes()) for blob in bucket.list_blobs(prefix=objects.DECISION_LOG_PREFIX)]


def versions(bucket: storage.Bucket) -> list[str]:
    """Committed versions (those with a metadata.json), oldest first."""
    found = (objects.version_of_metadata(blob.name) for blob in bucket.list_blobs(prefix=objects.MODELS_PREFIX))
    return sorted(version for version in found if version)


# The word vectors last read, by (object, sha256): a warm retrain function or job reads a 20 MB file once.
_WORD_VECTORS: dict[tuple[str, str], WordVectors] = {}


def read_word_vectors(bucket: storage.Bucket, name: str, sha256: str) -> WordVectors:
    """The title word vectors at `name` (under word-vectors/), refused unless their sha256 is `sha256`."""
    key = (name, sha256)
    if key not in _WORD_VECTORS:
        data = bucket.blob(name).download_as_bytes()
        verify(data, f"word vectors gs://{bucket.name}/{name}", (("SAIKIKA_WORD_VECTORS_SHA256", sha256),))
        _WORD_VECTORS.clear()
        _WORD_VECTORS[key] = WordVectors.from_bytes(data)
    return _WORD_VECTORS[key]
