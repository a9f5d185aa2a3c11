"""Training data in the data bucket, laid out for growth; and the rows a promotion is judged on.

- Feedback lands create-only, one object per message, under `training/feedback/dt=<day>/`. **Compaction**
  folds those objects into one shard per day and run under `compacted/dt=<day>/`, listed by
  `compacted/manifest.json` with each shard's row count and rows digest; closed days are rolled up into one
  shard. The manifest is the commit point: a shard it does not list is never read, and an object it lists as
  retiring was folded already and is only deleted. So a crash at any step loses no row and duplicates none
  (a test kills compaction between every pair of steps).
- Other objects under `training/` (base data a person uploads) are read where they are.
- A **snapshot** is what one run trains on: the manifest's shards and the loose objects, with counts and a digest
  of the data (a sum of per-line hashes for shards, which a roll-up preserves, and names + content checksums for
  loose objects, so the same bytes uploaded again are the same data). Runs, state and metadata.json keep the snapshot's summary, never a list of every object.
- Rows are streamed object by object (never all text in memory). Newest event per item id wins
  (`saikika.core.rows.precedence`): pass one keeps, per row, only a 64-bit hash of the id, its event time, rank
  and position (≈ 25 bytes a row); later passes yield the winning rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from google.api_core import exceptions as gexc

from saikika.cloud import gcs
from saikika.core import jsonl, logs, objects, splits
from saikika.core.errors import TransientError
from saikika.core.items import Item
from saikika.core.rows import BASE_RANK, FEEDBACK_RANK, LabeledRows, TrainingRow, precedence, training_rows

log = logging.getLogger("saikika.training_data")

_DIGEST_MODULUS = 1 << 256
INVALID_EXAMPLES_KEPT = 20
# Feedback objects folded per manifest commit, and the reads and deletes in flight at a time.
COMPACTION_BATCH = 2_000
READ_THREADS = 8


class CompactionConflict(TransientError):
    """The manifest changed under a compaction: another writer is at work; try again later."""


# ---- objects and the manifest -----------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingObject:
    name: str
    generation: int
    updated: float  # epoch seconds, the storage service's clock
    size: int = 0
    checksum: str = ""  # the storage service's crc32c (else md5) of the content: identical bytes, identical data


def _object(blob: gcs.Blob) -> TrainingObject:
    return TrainingObject(
        blob.name,
        int(blob.generation),
        blob.updated.timestamp() if blob.updated else 0.0,
        int(blob.size or 0),
        blob.crc32c or blob.md5_hash or f"generation {blob.generation}",
    )


def _listed(bucket: gcs.Bucket, prefix: str) -> list[TrainingObject]:
    return sorted(
        (_object(b) for b in bucket.list_blobs(prefix=prefix) if objects.is_training_object(b.name)),
        key=lambda o: (o.updated, o.generation, o.name),
    )


def loose_feedback(bucket: gcs.Bucket) -> list[TrainingObject]:
    """Feedback objects not yet compacted: a listing that grows with new feedback, not with history."""
    return _listed(bucket, objects.FEEDBACK_FOLDER)


def base_objects(bucket: gcs.Bucket) -> list[TrainingObject]:
    """Every training object outside `training/feedback/`, without listing the feedback."""
    found: list[TrainingObject] = []
    iterator = bucket.list_blobs(prefix=objects.TRAINING_PREFIX, delimiter="/")
    found += [_object(b) for b in iterator if objects.is_training_object(b.name)]
    for prefix in sorted(iterator.prefixes):
        if prefix != objects.FEEDBACK_FOLDER:
            found += _listed(bucket, prefix)
    return sorted(found, key=lambda o: (o.updated, o.generation, o.name))


def list_objects(bucket: gcs.Bucket) -> list[TrainingObject]:
    """Every object under training/ (base data and loose feedback), oldest first."""
    return sorted(base_objects(bucket) + loose_feedback(bucket), key=lambda o: (o.updated, o.generation, o.name))


@dataclass(frozen=True)
class Shard:
    """One compacted shard the manifest lists: a day's rows, written by one compaction (or a roll-up)."""

    name: str
    generation: int
    day: str
    rows: int
    rows_digest: str  # hex sum of the lines' sha256 (see _line_digest)
    size: int = 0  # bytes

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "generation": self.generation,
            "day": self.day,
            "rows": self.rows,
            "rows_digest": self.rows_digest,
            "bytes": self.size,
        }

    @classmethod
    def from_json(cls, data: dict) -> Shard:
        return cls(
            data["name"], int(data["generation"]), data["day"], int(data["rows"]), data["rows_digest"], data["bytes"]
        )


@dataclass(frozen=True)
class Folded:
    """An object generation the manifest says was folded already: it is only deleted, never read again."""

    name: str
    generation: int

    def to_json(self) -> dict:
        return {"name": self.name, "generation": self.generation}

    @classmethod
    def from_json(cls, data: dict) -> Folded:
        return cls(data["name"], int(data["generation"]))


@dataclass(frozen=True)
class Manifest:
    """`compacted/manifest.json`, the commit point of compaction: the shards to read, and what to delete."""

    shards: tuple[Shard, ...] = ()
    retiring: tuple[Folded, ...] = ()
    updated_at: str | None = None

    @property
    def rows(self) -> int:
        return sum(shard.rows for shard in self.shards)

    def to_json(self) -> dict:
        out = {
            "shards": [shard.to_json() for shard in self.shards],
            "retiring": [entry.to_json() for entry in self.retiring],
            "rows": self.rows,
        }
        return out if self.updated_at is None else {**out, "updated_at": self.updated_at}

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        return cls(
            tuple(Shard.from_json(shard) for shard in data.get("shards", [])),
            tuple(Folded.from_json(entry) for entry in data.get("retiring", [])),
            data.get("updated_at"),
        )


def read_manifest(bucket: gcs.Bucket) -> tuple[Manifest, int]:
    found = gcs.read_json(bucket, objects.COMPACTION_MANIFEST)
    return (Manifest(), 0) if found is None else (Manifest.from_json(found[0]), found[1])


def _write_manifest(bucket: gcs.Bucket, manifest: Manifest, generation: int) -> tuple[Manifest, int]:
    manifest = replace(manifest, updated_at=datetime.now(UTC).isoformat())
    written = gcs.write_if_generation(
        bucket, objects.COMPACTION_MANIFEST, gcs.to_json(manifest.to_json()), gcs.JSON, generation
    )
    if written is None:
        raise CompactionConflict(f"{objects.COMPACTION_MANIFEST} changed during compaction")
    return manifest, written


def _line_digest(lines: list[bytes]) -> int:
    """Sum of the lines' sha256 (mod 2^256): independent of order and of how lines are split into shards."""
    return sum(int.from_bytes(hashlib.sha256(line).digest(), "big") for line in lines) % _DIGEST_MODULUS


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line.strip()]


# ---- compaction -------------------------------------------------------------------------------------
@dataclass
class CompactionResult:
    folded_objects: int = 0
    shards_written: int = 0
    rows: int = 0
    rolled_up_days: int = 0
    retired: int = 0


Checkpoint = Callable[[str], None]


def _no_checkpoint(_step: str) -> None:
    return None


def compact(bucket: gcs.Bucket, now: float | None = None, checkpoint: Checkpoint = _no_checkpoint) -> CompactionResult:
    """Fold loose feedback into day shards, then roll closed days up into one shard each. Runs under the
    retrain lease (one compactor at a time); the manifest's generation precondition guards the rest."""
    now = time.time() if now is None else now
    result = CompactionResult()
    manifest, generation = read_manifest(bucket)
    manifest, generation = _retire(bucket, manifest, generation, result, checkpoint)
    loose = loose_feedback(bucket)
    # In batches, each committed on its own: a backlog (after an outage) is folded a batch at a time, and a run
    # that is stopped keeps what its finished batches folded.
    for start in range(0, len(loose), COMPACTION_BATCH):
        manifest, generation = _fold(
            bucket, loose[start : start + COMPACTION_BATCH], manifest, generation, now, result, checkpoint
        )
    manifest, generation = _roll_up(bucket, manifest, generation, now, result, checkpoint)
    if result.folded_objects or result.rolled_up_days:
        logs.event(
            log,
            logging.INFO,
            "training data compacted",
            folded_objects=result.folded_objects,
            shards_written=result.shards_written,
            rows=result.rows,
            rolled_up_days=result.rolled_up_days,
            retired=result.retired,
            shards=len(manifest.shards),
        )
    return result


def _roll_up(
    bucket: gcs.Bucket,
    manifest: Manifest,
    generation: int,
    now: float,
    result: CompactionResult,
    checkpoint: Checkpoint,
) -> tuple[Manifest, int]:
    """Each closed day with several shards becomes one shard; the old ones are retired."""
    days: dict[str, list[Shard]] = {}
    for shard in manifest.shards:
        days.setdefault(shard.day, []).append(shard)
    for day, shards in sorted(days.items()):
        if day >= _day(now) or len(shards) < 2:
            continue
        lines = []
        for shard in shards:
            lines += _lines(bucket.blob(shard.name).download_as_bytes(if_generation_match=shard.generation))
        rolled = _write_shard(bucket, day, datetime.fromtimestamp(now, UTC), lines)
        checkpoint("shard written")
        names = {s.name for s in shards}
        manifest = replace(
            manifest,
            shards=(*(s for s in manifest.shards if s.name not in names), rolled),
            retiring=(*manifest.retiring, *(Folded(s.name, s.generation) for s in shards)),
        )
        manifest, generation = _write_manifest(bucket, manifest, generation)
        checkpoint("manifest committed")
        result.rolled_up_days += 1
        manifest, generation = _retire(bucket, manifest, generation, result, checkpoint)
    return manifest, generation


def _fold(
    bucket: gcs.Bucket,
    loose: list[TrainingObject],
    manifest: Manifest,
    generation: int,
    now: float,
    result: CompactionResult,
    checkpoint: Checkpoint,
) -> tuple[Manifest, int]:
    by_day: dict[str, list[TrainingObject]] = {}
    for obj in loose:
        by_day.setdefault(objects.day_of(obj.name) or _day(obj.updated), []).append(obj)
    written = datetime.fromtimestamp(now, UTC)

    def read(obj: TrainingObject) -> bytes:
        try:
            return bucket.blob(obj.name).download_as_bytes(if_generation_match=obj.generation)
        except (gexc.NotFound, gexc.PreconditionFailed):
            return b""  # gone or replaced since the listing: the next compaction sees what is there

    new_shards = []
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for day, members in sorted(by_day.items()):
            lines = [line for data in pool.map(read, members) for line in _lines(data)]
            if lines:
                new_shards.append(_write_shard(bucket, day, written, lines))
                checkpoint("shard written")
    manifest = replace(
        manifest, shards=(*manifest.shards, *new_shards), retiring=tuple(Folded(o.name, o.generation) for o in loose)
    )
    manifest, generation = _write_manifest(bucket, manifest, generation)
    checkpoint("manifest committed")
    result.folded_objects += len(loose)
    result.shards_written += len(new_shards)
    result.rows += sum(s.rows for s in new_shards)
    return _retire(bucket, manifest, generation, result, checkpoint)


def _day(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%d}"


def _write_shard(bucket: gcs.Bucket, day: str, written: datetime, lines: list[bytes]) -> Shard:
    data = b"\n".join(lines) + b"\n"
    name = objects.compacted_shard(day, written, hashlib.sha256(data).hexdigest())
    generation = gcs.write_if_generation(bucket, name, data, jsonl.CONTENT_TYPE, 0)
    if generation is None:  # the same content written by an attempt that died before its manifest
        generation = gcs.generation(bucket, name)
    return Shard(name, int(generation), day, len(lines), f"{_line_digest(lines):064x}", len(data))


def _retire(
    bucket: gcs.Bucket, manifest: Manifest, generation: int, result: CompactionResult, checkpoint: Checkpoint
) -> tuple[Manifest, int]:
    """Delete what the manifest says was folded already (only that generation: a rewritten object is new data,
    left for the next compaction), then clear the list."""
    if not manifest.retiring:
        return manifest, generation
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for deleted in pool.map(
            lambda entry: gcs.delete_if_generation(bucket, entry.name, entry.generation), manifest.retiring
        ):
            result.retired += deleted
            checkpoint("source retired")
    return _write_manifest(bucket, replace(manifest, retiring=()), generation)


# ---- snapshots --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    manifest_generation: int
    shards: tuple[Shard, ...]
    loose: tuple[TrainingObject, ...]

    @property
    def digest(self) -> str:
        shard_sum = sum(int(s.rows_digest, 16) for s in self.shards) % _DIGEST_MODULUS
        loose = sorted((o.name, o.checksum, o.size) for o in self.loose)
        return hashlib.sha256(json.dumps([f"{shard_sum:064x}", loose]).encode()).hexdigest()

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.shards) + sum(o.size for o in self.loose)

    def summary(self, bucket_name: str) -> dict:
        """What runs, state and metadata.json keep: counts, the digest, a reference to the manifest."""
        return {
            "digest": self.digest,
            "manifest": f"gs://{bucket_name}/{objects.COMPACTION_MANIFEST}#{self.manifest_generation}",
            "shards": len(self.shards),
            "shard_rows": sum(s.rows for s in self.shards),
            "loose_objects": len(self.loose),
            "bytes": self.bytes,
        }


def snapshot(bucket: gcs.Bucket) -> Snapshot:
    """The manifest's shards and the loose objects, less those the manifest says were folded already (a
    compaction that stopped between its commit and the deletes): every row once."""
    manifest, generation = read_manifest(bucket)
    shards = tuple(sorted(manifest.shards, key=lambda s: (s.day, s.name)))
    folded = {(entry.name, entry.generation) for entry in manifest.retiring}
    return Snapshot(generation, shards, tuple(o for o in list_objects(bucket) if (o.name, o.generation) not in folded))


def _stream_lines(bucket: gcs.Bucket, name: str, generation: int) -> Iterator[str]:
    # Undecodable bytes become U+FFFD: the line is then judged (and reported) by the item contract.
    return gcs.iter_lines(bucket.blob(name, generation=generation), errors="replace")


def iter_rows(bucket: gcs.Bucket, snap: Snapshot, invalid: list[dict] | None = None) -> Iterator[TrainingRow]:
    """Every row of the snapshot in one fixed order (shards by day, then loose objects oldest first)."""
    invalid = [] if invalid is None else invalid
    for shard in snap.shards:
        source = f"gs://{bucket.name}/{shard.name}#{shard.generation}"
        yield from training_rows(
            source, _stream_lines(bucket, shard.name, shard.generation), 0.0, FEEDBACK_RANK, invalid
        )
    for obj in snap.loose:
        rank = FEEDBACK_RANK if obj.name.startswith(objects.FEEDBACK_FOLDER) else BASE_RANK
        source = f"gs://{bucket.name}/{obj.name}#{obj.generation}"
        yield from training_rows(source, _stream_lines(bucket, obj.name, obj.generation), obj.updated, rank, invalid)


def rows_after(bucket: gcs.Bucket, snap: Snapshot, after: float) -> Iterator[TrainingRow]:
    """The snapshot's feedback rows whose event time is after `after` (epoch seconds): only the shards of that day
    and later, and the loose feedback objects of those days, are read (feedback lands in the day it was published,
    its event time): what a run costs grows with the feedback since then, never with the days before."""
    since = _day(after)
    shards = [shard for shard in snap.shards if shard.day >= since]
    loose = [
        obj
        for obj in snap.loose
        if obj.name.startswith(objects.FEEDBACK_FOLDER) and (objects.day_of(obj.name) or _day(obj.updated)) >= since
    ]
    for row in iter_rows(bucket, Snapshot(snap.manifest_generation, tuple(shards), tuple(loose))):
        if row.rank == FEEDBACK_RANK and row.event_time > after:
            yield row


def _id_hash(item_id: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True
    )


@dataclass
class Winners:
    """Which rows of a snapshot win (newest per id), and what pass one saw."""

    keep: np.ndarray  # bool per row position
    rows_valid: int
    rows_invalid: int
    invalid_examples: list[dict] = field(default_factory=list)
    newest_event_time: float | None = None

    @property
    def rows(self) -> int:
        return int(self.keep.sum())


def newest_per_item(bucket: gcs.Bucket, snap: Snapshot) -> Winners:
    """Pass one: per row only (id hash, event time, rank); 64-bit id hashes (a collision among a million
    ids has odds of about 3e-8, and merges two items' rows)."""
    invalid: list[dict] = []
    # Typed arrays: 17 bytes a row, where lists of Python numbers would hold about 100.
    hashes, times, ranks = array("q"), array("d"), array("b")
    for row in iter_rows(bucket, snap, invalid):
        hashes.append(_id_hash(row.item.id))
        times.append(row.event_time)
        ranks.append(row.rank)
    h, t, r = np.frombuffer(hashes, np.int64), np.frombuffer(times, np.float64), np.frombuffer(ranks, np.int8)
    key = precedence(t, r, np.arange(len(h)))
    # Sort by id hash, then by precedence: the last row of each id's run wins.
    sorted_rows = np.lexsort((key[2], key[1], key[0], h))
    sorted_hashes = h[sorted_rows]
    last = np.ones(len(h), bool)
    last[:-1] = sorted_hashes[1:] != sorted_hashes[:-1]
    keep = np.zeros(len(h), bool)
    keep[sorted_rows[last]] = True
    return Winners(
        keep, len(h), len(invalid), invalid[:INVALID_EXAMPLES_KEPT], float(t[keep].max()) if keep.any() else None
    )


def iter_winning_items(bucket: gcs.Bucket, snap: Snapshot, winners: Winners) -> Iterator[Item]:
    for position, row in enumerate(iter_rows(bucket, snap)):
        if position < len(winners.keep) and winners.keep[position]:
            yield row.item


# ---- holdout and evaluation rows --------------------------------------------------------------------
def read_holdout(bucket: gcs.Bucket) -> LabeledRows | None:
    """The trusted holdout file, `eval/holdout.jsonl`, if it exists."""
    blob = bucket.get_blob(objects.HOLDOUT_OBJECT)
    if blob is None:
        return None
    rows = LabeledRows()
    rows.add_lines(holdout_uri(bucket), jsonl.lines(blob.download_as_text()))
    return rows


def holdout_uri(bucket: gcs.Bucket) -> str:
    return f"gs://{bucket.name}/{objects.HOLDOUT_OBJECT}"


def evaluation_rows(bucket: gcs.Bucket, require_holdout: bool = False) -> tuple[list[Item], str] | None:
    """The rows a promotion is judged on and where they came from: the trusted holdout file if present,
    else the evaluation slice of the training data (streamed; only the slice is kept), which retraining leaves
    out; None when the holdout is required and absent."""
    holdout = read_holdout(bucket)
    if holdout is not None:
        return holdout.items, holdout_uri(bucket)
    if require_holdout:
        return None
    snap = snapshot(bucket)
    winners = newest_per_item(bucket, snap)
    return (
        [item for item in iter_winning_items(bucket, snap, winners) if splits.in_evaluation_slice(item.id)],
        f"evaluation slice of training data ({splits.EVALUATION_SLICE_RULE})",
    )
