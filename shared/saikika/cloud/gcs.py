"""Thin helpers over google-cloud-storage: conditional writes (generation preconditions) and reads with
generations. The client honours STORAGE_EMULATOR_HOST, so the same code runs against fake-gcs-server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

JSON = "application/json"

# The storage client's types under saikika's own names: handlers type their parameters with these and never
# import google.* themselves (an import-linter contract keeps it so).
Client = storage.Client
Bucket = storage.Bucket
Blob = storage.Blob

# Storage failures another attempt later may get past (the service's 429 and 5xx); anything else is a bug or a
# refusal, and retrying it would only repeat it.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
)


@dataclass(frozen=True)
class Patience:
    """How long one read may wait: the HTTP timeout of each attempt (connect, read) and the retry policy."""

    timeout: float | tuple[float, float] = 60
    retry: Retry = DEFAULT_RETRY


PATIENT = Patience()
# What a predictor waiting on a request can afford: a few seconds, then it serves the model it has.
SERVING = Patience(timeout=(2, 3), retry=DEFAULT_RETRY.with_timeout(4))


def client(project: str) -> storage.Client:
    return storage.Client(project=project)


def write_if_generation(
    bucket: storage.Bucket,
    name: str,
    data: bytes | str,
    content_type: str,
    generation: int,
    metadata: dict[str, str] | None = None,
) -> int | None:
    """Write `name` only if its generation is still `generation` (0: only if it does not exist yet).

    Returns the new generation, or None if the precondition failed (someone else wrote first). The one
    compare-and-swap every writer uses: create-only results, the lease, the champion pointer, retrain state.
    """
    blob = bucket.blob(name)
    blob.metadata = metadata
    try:
        blob.upload_from_string(data, content_type=content_type, if_generation_match=generation)
    except gexc.PreconditionFailed:
        return None
    return int(blob.generation)


def create_only(
    bucket: storage.Bucket, name: str, data: bytes | str, content_type: str, metadata: dict[str, str] | None = None
) -> bool:
    """Write `name` only if it does not exist yet. False means it already existed (a redelivery)."""
    return write_if_generation(bucket, name, data, content_type, 0, metadata) is not None


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"


def create_json(bucket: storage.Bucket, name: str, value: Any) -> bool:
    return create_only(bucket, name, to_json(value), JSON)


def read(bucket: storage.Bucket, name: str, patience: Patience = PATIENT) -> tuple[bytes, int] | None:
    """The object's bytes and generation, or None if it does not exist."""
    blob = bucket.blob(name)
    try:
        data = blob.download_as_bytes(timeout=patience.timeout, retry=patience.retry)
    except gexc.NotFound:
        return None
    return data, int(blob.generation)


def read_json(bucket: storage.Bucket, name: str, patience: Patience = PATIENT) -> tuple[Any, int] | None:
    found = read(bucket, name, patience)
    if found is None:
        return None
    return json.loads(found[0]), found[1]


def iter_lines(blob: storage.Blob, errors: str = "strict") -> Iterator[str]:
    """An object's text lines, streamed in 4 MiB reads (never the whole object in memory). `blob` may name a
    generation; `errors` is how undecodable bytes are handled, as for `open`."""
    with blob.open("rb", chunk_size=4 * 1024 * 1024) as raw:
        yield from io.TextIOWrapper(raw, encoding="utf-8", errors=errors, newline="\n")


def generation(bucket: storage.Bucket, name: str, patience: Patience = PATIENT) -> int | None:
    """A metadata read: cheaper than a download, enough to tell whether an object changed."""
    blob = bucket.get_blob(name, timeout=patience.timeout, retry=patience.retry)
    return None if blob is None else int(blob.generation)


def delete_if_generation(bucket: storage.Bucket, name: str, generation: int) -> bool:
    """Delete `name` only at `generation`. False if it is gone already or was rewritten since (a new generation is
    new work, left alone)."""
    try:
        bucket.blob(name).delete(if_generation_match=generation)
    except (gexc.NotFound, gexc.PreconditionFailed):
        return False
    return True
