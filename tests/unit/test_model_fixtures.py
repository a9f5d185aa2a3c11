"""Versions a release wrote (tests/fixtures/models/<release>/, see tests/model_fixtures.py) load with the current
code and the scikit-learn and skops it is installed with, through every loader, and score as they did then. This
is the test that fails when an upgrade of scikit-learn or skops breaks loading, before a deploy does."""

import json
import tomllib
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

from saikika.model import artifact, pipeline_file, validation
from tests.model_fixtures import FIXTURES, SCORES_FILE

REPO = Path(__file__).resolve().parents[2]
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


PINNED = ("scikit-learn", "skops")


def _declared() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    found = {Requirement(line).name: Requirement(line) for line in pyproject["project"]["dependencies"]}
    return {name: found[name] for name in PINNED}


@pytest.mark.parametrize("name", PINNED)
def test_what_is_installed_and_deployed_is_within_the_tested_pins(name):
    """The fixtures above were loaded with the installed versions; the functions deploy their locks' versions. Both
    must fall inside pyproject's pin, which names only minors the suite has run with."""
    requirement = _declared()[name]
    assert requirement.specifier.contains(version(name)), f"installed {name} {version(name)} outside {requirement}"
    assert "<" in str(requirement.specifier), f"{name} is not pinned to tested minor versions: {requirement}"
    for lock in sorted((REPO / "functions").glob("*/requirements.txt")):
        pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line)
        if name in pins:
            assert requirement.specifier.contains(pins[name]), f"{lock} pins {name}=={pins[name]} outside {requirement}"
