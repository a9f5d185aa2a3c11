"""A lease object taken and released with generation preconditions: at most one holder at a time,
and a holder that dies stops holding it once the lease expires."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from google.cloud import storage

from saikika.cloud import gcs


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    generation: int
    expires_at: float


@dataclass(frozen=True)
class Busy:
    holder: str
    expires_at: float


def acquire(bucket: storage.Bucket, name: str, duration_s: float, clock=time.time) -> Lease | Busy:
    found = gcs.read_json(bucket, name)
    now = clock()
    if found is not None:
        current, generation = found
        if float(current.get("expires_at", 0)) > now:
            return Busy(current.get("holder", "?"), float(current["expires_at"]))
    else:
        generation = 0
    holder = uuid.uuid4().hex
    expires_at = now + duration_s
    taken = gcs.write_if_generation(
        bucket, name, json.dumps({"holder": holder, "taken_at": now, "expires_at": expires_at}), gcs.JSON, generation
    )
    if taken is None:
        latest = gcs.read_json(bucket, name)
        current = latest[0] if latest else {}
        return Busy(current.get("holder", "?"), float(current.get("expires_at", now)))
    return Lease(name, holder, taken, expires_at)


def release(bucket: storage.Bucket, lease: Lease) -> None:
    """Mark the lease expired, only if it is still ours (it may have expired and been taken over).

    An overwrite rather than a delete: fake-gcs-server ignores preconditions on delete, and the
    same code must be safe locally and in the cloud.
    """
    gcs.write_if_generation(
        bucket,
        lease.name,
        json.dumps({"holder": None, "released_by": lease.holder, "expires_at": 0}),
        gcs.JSON,
        lease.generation,
    )
