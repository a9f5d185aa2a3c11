"""Thin helpers over google-cloud-storage: conditional writes (generation preconditions) and reads with
generations. The client honours STORAGE_EMULATOR_HOST, so the same code runs against fake-gcs-server."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from saikika.core.errors import ConfigError, TransientError

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


# What a person waiting at a command line can afford: a short connect timeout and a retry deadline of a few
# seconds, then a sentence (the default policy retries a refused connection for two minutes).
INTERACTIVE = Patience(timeout=(2, 10), retry=DEFAULT_RETRY.with_timeout(3))

PUBLIC_ENDPOINT = "https://storage.googleapis.com"


class StorageUnreachable(TransientError):
    """Nothing answered at the Cloud Storage endpoint (a stopped emulator, no network)."""


def client(project: str) -> storage.Client:
    return storage.Client(project=project)


def endpoint() -> str:
    """Where the client sends its requests: the emulator's address if one is set, else the public endpoint."""
    return os.environ.get("STORAGE_EMULATOR_HOST") or PUBLIC_ENDPOINT


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) says nothing answered: refused, timed out, or retried until the deadline."""
    while exc is not None:
        if isinstance(exc, requests.ConnectionError | requests.Timeout | auth_exceptions.TransportError):
            return True
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__  # RetryError names its cause
    return False


def answering_bucket(project: str, name: str, patience: Patience = INTERACTIVE) -> storage.Bucket:
    """A bucket whose endpoint answered one quick request: for a command line, which should say within seconds
    that the stack is down (StorageUnreachable) or that there are no credentials (ConfigError), not retry for
    minutes. The bucket's own calls keep their usual patience."""
    try:
        bucket = client(project).bucket(name)
        bucket.exists(timeout=patience.timeout, retry=patience.retry)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ConfigError(f"no Google credentials: gcloud auth application-default login ({exc})") from exc
    except gexc.GoogleAPICallError:
        pass  # it answered (403 and the like are the bucket's own business, told by the call that needs it)
    except Exception as exc:
        if is_unreachable(exc):
            raise StorageUnreachable(f"cannot reach Cloud Storage at {endpoint()}") from exc
        raise
    return bucket


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


# Objects are streamed in reads of this size: memory holds one, never the whole object.
STREAM_CHUNK_BYTES = 4 * 1024 * 1024


def iter_lines(blob: storage.Blob, errors: str = "strict") -> Iterator[str]:
    """An object's text lines, streamed. `blob` may name a generation; `errors` is how undecodable bytes are
    handled, as for `open`."""
    with blob.open("rb", chunk_size=STREAM_CHUNK_BYTES) as raw:
        yield from io.TextIOWrapper(raw, encoding="utf-8", errors=errors, newline="\n")


def iter_raw_lines(blob: storage.Blob) -> Iterator[bytes]:
    """An object's lines as bytes, streamed: each is decoded by its reader, so a line that is not UTF-8 is that
    line's problem, not the object's."""
    with blob.open("rb", chunk_size=STREAM_CHUNK_BYTES) as raw:
        yield from raw


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
