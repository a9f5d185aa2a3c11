"""Function packages: self-contained layout, exact pins, byte-for-byte reproducible."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from saikika import function_packages

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "shared" / "saikika"
FUNCTIONS = REPO / "functions"


def test_every_function_folder_has_a_package_definition():
    folders = {p.name for p in FUNCTIONS.iterdir() if (p / "main.py").exists()}
    assert folders == set(function_packages.FUNCTION_DEPENDENCIES)


@pytest.mark.parametrize("function", sorted(function_packages.FUNCTION_DEPENDENCIES))
def test_zip_layout_and_pins(tmp_path, function):
    target = function_packages.build(FUNCTIONS, LIBRARY, tmp_path, function)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        requirements = archive.read("requirements.txt").decode()
    assert "main.py" in names and "saikika/__init__.py" in names and "saikika/serving.py" in names
    assert not any("__pycache__" in name for name in names)
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
    pinned = {line.split("==")[0] for line in pins}
    assert {function_packages._canonical(d) for d in function_packages.FUNCTION_DEPENDENCIES[function]} <= pinned


def test_same_sources_give_the_same_bytes(tmp_path):
    first = function_packages.build(FUNCTIONS, LIBRARY, tmp_path / "a", "predict")
    second = function_packages.build(FUNCTIONS, LIBRARY, tmp_path / "b", "predict")
    assert function_packages.sha256_file(first) == function_packages.sha256_file(second)


def test_a_source_change_changes_only_that_package(tmp_path):
    functions = tmp_path / "functions"
    for name in function_packages.FUNCTION_DEPENDENCIES:
        (functions / name).mkdir(parents=True)
        for file in ("main.py", "requirements.txt"):
            (functions / name / file).write_bytes((FUNCTIONS / name / file).read_bytes())
    before = {n: function_packages.sha256_file(function_packages.build(functions, LIBRARY, tmp_path / "x", n))
              for n in function_packages.FUNCTION_DEPENDENCIES}
    (functions / "feedback" / "main.py").write_text((FUNCTIONS / "feedback" / "main.py").read_text() + "\n# changed\n")
    after = {n: function_packages.sha256_file(function_packages.build(functions, LIBRARY, tmp_path / "y", n))
             for n in function_packages.FUNCTION_DEPENDENCIES}
    assert [n for n in before if before[n] != after[n]] == ["feedback"]


def test_committed_locks_match_the_declared_dependencies():
    for function, direct in function_packages.FUNCTION_DEPENDENCIES.items():
        text = (FUNCTIONS / function / "requirements.txt").read_text()
        pinned = {line.split("==")[0] for line in text.splitlines() if "==" in line}
        assert {function_packages._canonical(d) for d in direct} <= pinned, function
        if "scikit-learn" not in direct:
            assert "scikit-learn" not in pinned  # a light function stays light
