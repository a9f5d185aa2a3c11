"""Thin helpers over google-cloud-storage: create-only writes and reads with generations.

The client honours STORAGE_EMULATOR_HOST, so the same code runs against fake-gcs-server.
"""

from __future__ import annotations

import json
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage

# Errors worth a retry: the service, not the request, is at fault.
TRANSIENT_ERRORS = (
    gexc.ServiceUnavailable,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.GatewayTimeout,
    gexc.TooManyRequests,
    gexc.RetryError,
    ConnectionError,
    TimeoutError,
)


def client(project: str) -> storage.Client:
    return storage.Client(project=project)


def create_only(bucket: storage.Bucket, name: str, data: bytes | str, content_type: str) -> bool:
    """Write `name` only if it does not exist yet. False means it already existed (a redelivery)."""
    try:
        bucket.blob(name).upload_from_string(data, content_type=content_type, if_generation_match=0)
    except gexc.PreconditionFailed:
        return False
    return True


def create_json(bucket: storage.Bucket, name: str, value: Any) -> bool:
    return create_only(bucket, name, json.dumps(value, ensure_ascii=False, indent=2) + "\n", "application/json")


def read(bucket: storage.Bucket, name: str) -> tuple[bytes, int] | None:
    """The object's bytes and generation, or None if it does not exist."""
    blob = bucket.blob(name)
    try:
        data = blob.download_as_bytes()
    except gexc.NotFound:
        return None
    return data, int(blob.generation)


def read_json(bucket: storage.Bucket, name: str) -> tuple[Any, int] | None:
    found = read(bucket, name)
    if found is None:
        return None
    return json.loads(found[0]), found[1]


def generation(bucket: storage.Bucket, name: str) -> int | None:
    """A metadata read: cheaper than a download, enough to tell whether an object changed."""
    blob = bucket.get_blob(name)
    return None if blob is None else int(blob.generation)
