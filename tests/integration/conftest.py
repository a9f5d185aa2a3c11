"""Integration fixtures: the real Pub/Sub emulator, fake-gcs-server and functions-framework
processes, started once per session by the same LocalStack that `saikika local up` uses."""

from __future__ import annotations

import pytest

from tests.integration.helpers import promote, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory, model_files):
    """A running stack whose champion is the small synthetic model."""
    running = start_stack(tmp_path_factory.mktemp("stack"), SAIKIKA_MODEL_TTL_S="1")
    try:
        promote(running, model_files)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def storage_client(stack):
    return stack.storage_client()


@pytest.fixture(scope="session")
def predictions_bucket(stack, storage_client):
    return storage_client.bucket(stack.env["SAIKIKA_PREDICTIONS_BUCKET"])


@pytest.fixture(scope="session")
def publisher(stack):
    return stack.publisher()
