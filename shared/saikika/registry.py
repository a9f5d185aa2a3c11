"""Model versions and the champion pointer in the models bucket.

Layout: `models/<version>/model.skops`, `models/<version>/metadata.json` (written last,
the commit marker) and `models/champion.json` (`{"version", "sha256", ...}`), which
only ever changes by compare-and-swap on its generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from google.api_core import exceptions as gexc
from google.cloud import storage

from saikika import storage as gcs
from saikika.artifact import INFERENCE_FILE, METADATA_FILE, MODEL_FILE, ModelFiles

MODELS_PREFIX = "models/"
CHAMPION_OBJECT = "models/champion.json"
DECISION_FILE = "decision.json"
HISTORY_PREFIX = "models/history/"


def version_prefix(version: str) -> str:
    return f"{MODELS_PREFIX}{version}/"


@dataclass(frozen=True)
class Champion:
    version: str
    sha256: str
    generation: int
    pointer: dict

    @property
    def inference_sha256(self) -> str | None:
        return self.pointer.get("inference_sha256")


class ChampionChanged(Exception):
    """The pointer moved between read and write: re-read and decide again."""


def push(bucket: storage.Bucket, data: bytes, metadata: dict, inference: bytes | None = None,
         extra_files: dict[str, tuple[bytes, str]] | None = None) -> str:
    """Upload a version, create-only: the model, the inference arrays, any extra files (name → bytes,
    content type), and metadata.json last, since its appearance is what commits the version."""
    version = metadata["version"]
    prefix = version_prefix(version)
    gcs.create_only(bucket, prefix + MODEL_FILE, data, "application/octet-stream")
    if inference is not None:
        gcs.create_only(bucket, prefix + INFERENCE_FILE, inference, "application/octet-stream")
    for name, (content, content_type) in (extra_files or {}).items():
        gcs.create_only(bucket, prefix + name, content, content_type)
    gcs.create_json(bucket, prefix + METADATA_FILE, metadata)
    return version


def read_champion(bucket: storage.Bucket) -> Champion | None:
    found = gcs.read_json(bucket, CHAMPION_OBJECT)
    if found is None:
        return None
    pointer, generation = found
    return Champion(version=pointer["version"], sha256=pointer["sha256"], generation=generation, pointer=pointer)


def set_champion(bucket: storage.Bucket, metadata: dict, expected: Champion | None, reason: str) -> Champion:
    """Compare-and-swap the pointer: succeeds only if it is still `expected` (None: still absent)."""
    history = list(expected.pointer.get("history", [])) if expected else []
    if expected:
        history.append({k: expected.pointer[k] for k in ("version", "sha256", "inference_sha256", "promoted_at")
                        if k in expected.pointer})
    pointer = {"version": metadata["version"], "sha256": metadata["sha256"],
               "inference_sha256": (metadata.get("inference") or {}).get("sha256"), "reason": reason,
               # Earlier champions, oldest first: what rollback goes back to.
               "history": history[-50:]}
    return _swap(bucket, pointer, expected)


def rollback(bucket: storage.Bucket, expected: Champion) -> Champion:
    """Point back at the previous champion (also a compare-and-swap)."""
    history = list(expected.pointer.get("history", []))
    if not history:
        raise ValueError(f"{expected.version} has no previous champion to roll back to")
    previous = history.pop()
    pointer = {"version": previous["version"], "sha256": previous["sha256"],
               "inference_sha256": previous.get("inference_sha256"),
               "reason": f"rolled back from {expected.version}", "history": history}
    return _swap(bucket, pointer, expected)


def _swap(bucket: storage.Bucket, pointer: dict, expected: Champion | None) -> Champion:
    pointer = {**pointer, "promoted_at": datetime.now(timezone.utc).isoformat()}
    blob = bucket.blob(CHAMPION_OBJECT)
    try:
        blob.upload_from_string(
            json.dumps(pointer, indent=2) + "\n",
            content_type="application/json",
            if_generation_match=expected.generation if expected else 0,
        )
    except gexc.PreconditionFailed as exc:
        raise ChampionChanged("models/champion.json changed since it was read") from exc
    return Champion(version=pointer["version"], sha256=pointer["sha256"], generation=int(blob.generation), pointer=pointer)


def read_metadata(bucket: storage.Bucket, version: str) -> dict | None:
    found = gcs.read_json(bucket, version_prefix(version) + METADATA_FILE)
    return None if found is None else found[0]


def read_decision(bucket: storage.Bucket, version: str) -> dict | None:
    """The promote function's verdict on a version; None until it has been judged."""
    found = gcs.read_json(bucket, version_prefix(version) + DECISION_FILE)
    return None if found is None else found[0]


def read_file(bucket: storage.Bucket, version: str, name: str) -> bytes | None:
    found = gcs.read(bucket, version_prefix(version) + name)
    return None if found is None else found[0]


def read_version(bucket: storage.Bucket, version: str) -> ModelFiles | None:
    """A committed version's files; None if its metadata or model file is absent."""
    metadata = read_metadata(bucket, version)
    if metadata is None:
        return None
    model = read_file(bucket, version, MODEL_FILE)
    if model is None:
        return None
    arrays = read_file(bucket, version, INFERENCE_FILE) if metadata.get("inference") else None
    return ModelFiles(model, metadata, arrays)


def record_history(bucket: storage.Bucket, entry: dict) -> str:
    """Append one decision (judged, promoted by hand, rolled back) to the history: one object each."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    name = f"{HISTORY_PREFIX}{stamp}-{entry.get('version', 'unknown')}.json"
    gcs.create_json(bucket, name, entry)
    return name


def history(bucket: storage.Bucket) -> list[dict]:
    return [json.loads(blob.download_as_bytes()) for blob in bucket.list_blobs(prefix=HISTORY_PREFIX)]


def versions(bucket: storage.Bucket) -> list[str]:
    """Committed versions (those with a metadata.json), oldest first."""
    found = [
        blob.name[len(MODELS_PREFIX):-len("/" + METADATA_FILE)]
        for blob in bucket.list_blobs(prefix=MODELS_PREFIX)
        if blob.name.endswith("/" + METADATA_FILE) and blob.name.count("/") == 2
    ]
    return sorted(found)
