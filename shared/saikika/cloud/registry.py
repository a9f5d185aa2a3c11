"""Model versions and the champion pointer in the models bucket (layout: `saikika.core.objects`).

A version is `models/<version>/` with `metadata.json` written last (its commit marker). The pointer
`models/champion.json` (`{"version", "sha256", "inference_sha256", "promoted_at", "reason", "history"}`)
only ever changes by compare-and-swap on its generation; its `history` key lists the previous champions,
oldest first (what rollback goes back to). Every decision is also kept as one object in the decision log,
`models/history/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from saikika.cloud import gcs
from saikika.core import objects
from saikika.core.decisions import Action, Decision, Outcome
from saikika.core.errors import SaikikaError
from saikika.model.artifact import ModelFiles, parse_metadata, sha256_hex, verify
from saikika.model.word_vectors import WordVectors

# How many previous champions the pointer remembers for rollback.
PREVIOUS_CHAMPIONS_KEPT = 50


@dataclass(frozen=True)
class PreviousChampion:
    """One entry of the pointer's `history`: a champion that was replaced."""

    version: str
    sha256: str
    inference_sha256: str | None = None
    promoted_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"version": self.version, "sha256": self.sha256, "inference_sha256": self.inference_sha256}
        return out if self.promoted_at is None else {**out, "promoted_at": self.promoted_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PreviousChampion:
        return cls(data["version"], data["sha256"], data.get("inference_sha256"), data.get("promoted_at"))


@dataclass(frozen=True)
class Champion:
    """The pointer `models/champion.json`, and the generation it was read (or written) at."""

    version: str
    sha256: str
    inference_sha256: str | None = None
    reason: str | None = None
    history: tuple[PreviousChampion, ...] = ()  # oldest first
    promoted_at: str | None = None
    generation: int = field(default=0, compare=False)

    def as_previous(self) -> PreviousChampion:
        return PreviousChampion(self.version, self.sha256, self.inference_sha256, self.promoted_at)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "sha256": self.sha256,
            "inference_sha256": self.inference_sha256,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        out["history"] = [previous.to_json() for previous in self.history]
        if self.promoted_at is not None:
            out["promoted_at"] = self.promoted_at
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], generation: int = 0) -> Champion:
        return cls(
            version=data["version"],
            sha256=data["sha256"],
            inference_sha256=data.get("inference_sha256"),
            reason=data.get("reason"),
            history=tuple(PreviousChampion.from_json(entry) for entry in data.get("history", [])),
            promoted_at=data.get("promoted_at"),
            generation=generation,
        )


class ChampionChanged(SaikikaError):
    """The pointer moved between read and write: re-read and decide again."""


def push(
    bucket: gcs.Bucket,
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


def read_champion(bucket: gcs.Bucket, patience: gcs.Patience = gcs.PATIENT) -> Champion | None:
    found = gcs.read_json(bucket, objects.CHAMPION_OBJECT, patience)
    return None if found is None else Champion.from_json(*found)


def set_champion(bucket: gcs.Bucket, metadata: dict, expected: Champion | None, reason: str) -> Champion:
    """Compare-and-swap the pointer: succeeds only if it is still `expected` (None: still absent)."""
    history = (*expected.history, expected.as_previous()) if expected else ()
    pointer = Champion(
        version=metadata["version"],
        sha256=metadata["sha256"],
        inference_sha256=(metadata.get("inference") or {}).get("sha256"),
        reason=reason,
        history=history[-PREVIOUS_CHAMPIONS_KEPT:],
    )
    return _swap(bucket, pointer, expected)


def rollback(bucket: gcs.Bucket, expected: Champion) -> Champion:
    """Point back at the previous champion (also a compare-and-swap)."""
    if not expected.history:
        raise ValueError(f"{expected.version} has no previous champion to roll back to")
    *history, restored = expected.history
    pointer = Champion(
        version=restored.version,
        sha256=restored.sha256,
        inference_sha256=restored.inference_sha256,
        reason=f"rolled back from {expected.version}",
        history=tuple(history),
    )
    return _swap(bucket, pointer, expected)


def _swap(bucket: gcs.Bucket, pointer: Champion, expected: Champion | None) -> Champion:
    pointer = replace(pointer, promoted_at=datetime.now(UTC).isoformat())
    generation = gcs.write_if_generation(
        bucket,
        objects.CHAMPION_OBJECT,
        gcs.to_json(pointer.to_json()),
        gcs.JSON,
        expected.generation if expected else 0,
    )
    if generation is None:
        raise ChampionChanged(f"{objects.CHAMPION_OBJECT} changed since it was read")
    return replace(pointer, generation=generation)


def promote_by_hand(bucket: gcs.Bucket, metadata: dict, reason: str) -> tuple[Champion, Champion | None]:
    """Make a version the champion by hand (the CLI, the demo, tests): one compare-and-swap against the pointer as
    read now, and an entry in the decision log. Returns (new champion, the one it replaced). ChampionChanged if
    the pointer moved meanwhile: nothing was changed."""
    current = read_champion(bucket)
    champion = set_champion(bucket, metadata, current, reason=reason)
    _record_by_hand(bucket, Action.PROMOTE_BY_HAND, champion, current, reason)
    return champion, current


def rollback_by_hand(bucket: gcs.Bucket) -> tuple[Champion, Champion]:
    """Point the champion back at the previous one and log it. Returns (restored champion, the one rolled back).
    ValueError if there is nothing to roll back to; ChampionChanged if the pointer moved meanwhile."""
    current = read_champion(bucket)
    if current is None:
        raise ValueError("there is no champion to roll back")
    restored = rollback(bucket, current)
    _record_by_hand(bucket, Action.ROLLBACK, restored, current, None)
    return restored, current


def _record_by_hand(
    bucket: gcs.Bucket, action: Action, champion: Champion, previous: Champion | None, reason: str | None
) -> None:
    decision = Decision(
        version=champion.version,
        action=action,
        outcome=Outcome.PROMOTED,
        reason=reason,
        previous_champion=previous.version if previous else None,
        decided_at=champion.promoted_at,
    )
    record_decision(bucket, decision)


def read_metadata(bucket: gcs.Bucket, version: str, patience: gcs.Patience = gcs.PATIENT) -> dict | None:
    """A version's metadata.json; None if it is absent, ModelIntegrityError if it is not a JSON object (a broken
    version, refused like any other bad artifact)."""
    found = gcs.read(bucket, objects.version_file(version, objects.METADATA_FILE), patience)
    return None if found is None else parse_metadata(found[0])


def read_verdict(bucket: gcs.Bucket, version: str) -> Decision | None:
    """The promote function's verdict on a version; None until it has been judged."""
    found = gcs.read_json(bucket, objects.version_file(version, objects.DECISION_FILE))
    return None if found is None else Decision.from_json(found[0])


def read_decision(bucket: gcs.Bucket, version: str) -> dict | None:
    """The verdict as its JSON (what the CLI and the demo display)."""
    verdict = read_verdict(bucket, version)
    return None if verdict is None else verdict.to_json()


def write_verdict(bucket: gcs.Bucket, decision: Decision) -> bool:
    """The promote function's verdict: `decision.json` (create-only: the first verdict stands) and, when this call
    wrote it, its decision-log entry. False if the version had been judged already."""
    if not gcs.create_json(bucket, objects.version_file(decision.version, objects.DECISION_FILE), decision.to_json()):
        return False
    record_decision(bucket, decision)
    return True


def read_file(bucket: gcs.Bucket, version: str, name: str, patience: gcs.Patience = gcs.PATIENT) -> bytes | None:
    found = gcs.read(bucket, objects.version_file(version, name), patience)
    return None if found is None else found[0]


def read_version(bucket: gcs.Bucket, version: str) -> ModelFiles | None:
    """A committed version's files; None if its metadata or model file is absent."""
    metadata = read_metadata(bucket, version)
    if metadata is None:
        return None
    model = read_file(bucket, version, objects.MODEL_FILE)
    if model is None:
        return None
    arrays = read_file(bucket, version, objects.INFERENCE_FILE) if metadata.get("inference") else None
    return ModelFiles(model, metadata, arrays)


def record_decision(bucket: gcs.Bucket, decision: Decision) -> str:
    """Append one decision (judged, promoted by hand, rolled back) to the decision log: one object each."""
    name = objects.decision_log_entry(datetime.now(UTC), decision.version)
    gcs.create_json(bucket, name, decision.to_json())
    return name


def decision_log(bucket: gcs.Bucket) -> list[Decision]:
    return [
        Decision.from_json(json.loads(blob.download_as_bytes()))
        for blob in bucket.list_blobs(prefix=objects.DECISION_LOG_PREFIX)
    ]


def versions(bucket: gcs.Bucket) -> list[str]:
    """Committed versions (those with a metadata.json), oldest first."""
    found = (objects.version_of_metadata(blob.name) for blob in bucket.list_blobs(prefix=objects.MODELS_PREFIX))
    return sorted(version for version in found if version)


# The word vectors last read, by (object, sha256): a warm retrain function or job reads a 20 MB file once.
_WORD_VECTORS: dict[tuple[str, str], WordVectors] = {}


def read_word_vectors(bucket: gcs.Bucket, name: str, sha256: str) -> WordVectors:
    """The title word vectors at `name` (under word-vectors/), refused unless their sha256 is `sha256`."""
    key = (name, sha256)
    if key not in _WORD_VECTORS:
        data = bucket.blob(name).download_as_bytes()
        verify(data, f"word vectors gs://{bucket.name}/{name}", (("SAIKIKA_WORD_VECTORS_SHA256", sha256),))
        _WORD_VECTORS.clear()
        _WORD_VECTORS[key] = WordVectors.from_bytes(data)
    return _WORD_VECTORS[key]


def push_word_vectors(bucket: gcs.Bucket, data: bytes, stem: str) -> tuple[str, str]:
    """Upload title word vectors under word-vectors/, create-only: (object name, sha256). The name holds the
    content's digest, so the same file pushed again is already there and nothing is written."""
    digest = sha256_hex(data)
    name = objects.word_vectors_object(stem, digest)
    gcs.create_only(bucket, name, data, "application/octet-stream")
    return name, digest
