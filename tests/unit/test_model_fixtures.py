"""Versions a release wrote (tests/fixtures/models/<release>/, see tests/model_fixtures.py) load with the current
code and the scikit-learn and skops it is installed with, through every loader, and score as they did then. This
is the test that fails when an upgrade of scikit-learn or skops breaks loading, before a deploy does."""

import json

import numpy as np
import pytest

from saikika.model import artifact, pipeline_file, validation
from tests.model_fixtures import FIXTURES, SCORES_FILE

RELEASES = sorted(path for path in FIXTURES.iterdir() if path.is_dir())


def test_there_is_a_release_to_load():
    assert RELEASES, f"no model fixtures under {FIXTURES}"


@pytest.fixture(params=RELEASES, ids=[path.name for path in RELEASES])
def release(request):
    files = artifact.read_dir(request.param)
    expected = json.loads((request.param / SCORES_FILE).read_text(encoding="utf-8"))
    return files, expected


def test_the_pipeline_loads_and_scores_as_it_did(release):
    files, expected = release
    loaded = pipeline_file.load(files.model, files.metadata, expected_sha256=files.metadata["sha256"])
    assert list(loaded.labels) == expected["labels"]
    np.testing.assert_allclose(loaded.scores(expected["texts"]), expected["scores"], rtol=0, atol=1e-9)


def test_the_inference_artifact_loads_and_scores_as_it_did(release):
    files, expected = release
    served = artifact.load_inference(files.inference, files.metadata)
    assert list(served.labels) == expected["labels"]
    np.testing.assert_allclose(served.scores(expected["texts"]), expected["scores"], rtol=0, atol=1e-9)


def test_the_version_still_passes_the_promotion_checks(release):
    files, _ = release
    assert validation.validate(files).version == files.metadata["version"]
