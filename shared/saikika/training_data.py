"""Training data in the data bucket: every JSONL object under `training/`, newest row per item id wins."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from google.cloud import storage

from saikika.datasets import LoadedRows

TRAINING_PREFIX = "training/"
HOLDOUT_OBJECT = "eval/holdout.jsonl"
EVAL_SLICE_FRACTION = 0.10
EVAL_SLICE_RULE = f"sha256('eval:' + item id) < {EVAL_SLICE_FRACTION} of the hash space; never trained on"


@dataclass(frozen=True)
class TrainingObject:
    name: str
    generation: int
    updated: float  # epoch seconds, the storage service's clock

    def to_json(self) -> dict:
        return {"name": self.name, "generation": self.generation}


def is_training_object(name: str) -> bool:
    return name.startswith(TRAINING_PREFIX) and name.endswith(".jsonl")


def list_objects(bucket: storage.Bucket) -> list[TrainingObject]:
    """Oldest first, so that later objects override earlier rows for the same item id."""
    found = [
        TrainingObject(blob.name, int(blob.generation), blob.updated.timestamp() if blob.updated else 0.0)
        for blob in bucket.list_blobs(prefix=TRAINING_PREFIX)
        if is_training_object(blob.name)
    ]
    return sorted(found, key=lambda o: (o.updated, o.generation, o.name))


def load(bucket: storage.Bucket, objects: list[TrainingObject]) -> LoadedRows:
    """Read the named generations (not whatever is there now) and keep the newest row per id."""
    rows = LoadedRows()
    for obj in objects:
        text = bucket.blob(obj.name).download_as_text(if_generation_match=obj.generation)
        rows.add_lines(f"gs://{bucket.name}/{obj.name}#{obj.generation}", text.splitlines())
    newest = {item.id: item for item in rows.items}  # dict keeps the last assignment: the newest object
    rows.items = list(newest.values())
    return rows


def in_eval_slice(item_id: str) -> bool:
    digest = hashlib.sha256(f"eval:{item_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < EVAL_SLICE_FRACTION


def read_holdout(bucket: storage.Bucket) -> LoadedRows | None:
    blob = bucket.get_blob(HOLDOUT_OBJECT)
    if blob is None:
        return None
    rows = LoadedRows()
    rows.add_lines(f"gs://{bucket.name}/{HOLDOUT_OBJECT}", blob.download_as_text().splitlines())
    return rows


def evaluation_rows(bucket: storage.Bucket) -> tuple[list, str]:
    """The rows a promotion is judged on and where they came from: eval/holdout.jsonl if present,
    else the fixed slice of the training data that retraining leaves out."""
    holdout = read_holdout(bucket)
    if holdout is not None:
        return holdout.items, f"gs://{bucket.name}/{HOLDOUT_OBJECT}"
    rows = load(bucket, list_objects(bucket))
    return [item for item in rows.items if in_eval_slice(item.id)], f"eval slice of training data ({EVAL_SLICE_RULE})"


def dumps_rows(items) -> str:
    return "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items)
