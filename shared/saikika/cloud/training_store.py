"""Training data in the data bucket: every JSONL object under `training/`, newest row per item id wins;
and the rows a promotion is judged on (the trusted holdout file, else the evaluation slice)."""

from __future__ import annotations

from dataclasses import dataclass

from google.cloud import storage

from saikika.core import objects, splits
from saikika.core.items import Item
from saikika.core.rows import LabeledRows


@dataclass(frozen=True)
class TrainingObject:
    name: str
    generation: int
    updated: float  # epoch seconds, the storage service's clock

    def to_json(self) -> dict:
        return {"name": self.name, "generation": self.generation}


def list_objects(bucket: storage.Bucket) -> list[TrainingObject]:
    """Oldest first, so that later objects override earlier rows for the same item id."""
    found = [
        TrainingObject(blob.name, int(blob.generation), blob.updated.timestamp() if blob.updated else 0.0)
        for blob in bucket.list_blobs(prefix=objects.TRAINING_PREFIX)
        if objects.is_training_object(blob.name)
    ]
    return sorted(found, key=lambda o: (o.updated, o.generation, o.name))


def load(bucket: storage.Bucket, training_objects: list[TrainingObject]) -> LabeledRows:
    """Read the named generations (not whatever is there now) and keep the newest row per id."""
    rows = LabeledRows()
    for obj in training_objects:
        text = bucket.blob(obj.name).download_as_text(if_generation_match=obj.generation)
        rows.add_lines(f"gs://{bucket.name}/{obj.name}#{obj.generation}", text.splitlines())
    newest = {item.id: item for item in rows.items}  # dict keeps the last assignment: the newest object
    rows.items = list(newest.values())
    return rows


def read_holdout(bucket: storage.Bucket) -> LabeledRows | None:
    """The trusted holdout file, `eval/holdout.jsonl`, if it exists."""
    blob = bucket.get_blob(objects.HOLDOUT_OBJECT)
    if blob is None:
        return None
    rows = LabeledRows()
    rows.add_lines(holdout_uri(bucket), blob.download_as_text().splitlines())
    return rows


def holdout_uri(bucket: storage.Bucket) -> str:
    return f"gs://{bucket.name}/{objects.HOLDOUT_OBJECT}"


def evaluation_rows(bucket: storage.Bucket, require_holdout: bool = False) -> tuple[list[Item], str] | None:
    """The rows a promotion is judged on and where they came from: the trusted holdout file if present,
    else the evaluation slice of the training data, which retraining leaves out; None when the holdout is
    required and absent."""
    holdout = read_holdout(bucket)
    if holdout is not None:
        return holdout.items, holdout_uri(bucket)
    if require_holdout:
        return None
    rows = load(bucket, list_objects(bucket))
    return ([item for item in rows.items if splits.in_evaluation_slice(item.id)],
            f"evaluation slice of training data ({splits.EVALUATION_SLICE_RULE})")
