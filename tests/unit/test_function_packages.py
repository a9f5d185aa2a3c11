"""Function packages: self-contained layout, exact pins, byte-for-byte reproducible."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from saikika.tooling import packaging

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"


def test_every_function_folder_has_a_package_definition():
    folders = {p.name for p in FUNCTIONS.iterdir() if (p / "main.py").exists()}
    assert folders == set(packaging.FUNCTION_DEPENDENCIES)


@pytest.mark.parametrize("function", sorted(packaging.FUNCTION_DEPENDENCIES))
def test_zip_layout_and_pins(tmp_path, function):
    target = packaging.build(FUNCTIONS, tmp_path, function)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        requirements = archive.read("requirements.txt").decode()
    assert "main.py" in names and "saikika/__init__.py" in names and f"saikika/handlers/{function}.py" in names
    assert not any("__pycache__" in name for name in names)
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
    pinned = {line.split("==")[0] for line in pins}
    assert {packaging._canonical(d) for d in packaging.FUNCTION_DEPENDENCIES[function]} <= pinned


def test_same_sources_give_the_same_bytes(tmp_path):
    first = packaging.build(FUNCTIONS, tmp_path / "a", "predict")
    second = packaging.build(FUNCTIONS, tmp_path / "b", "predict")
    assert packaging.sha256_file(first) == packaging.sha256_file(second)


def test_a_source_change_changes_only_that_package(tmp_path):
    functions = tmp_path / "functions"
    for name in packaging.FUNCTION_DEPENDENCIES:
        (functions / name).mkdir(parents=True)
        for file in ("main.py", "requirements.txt"):
            (functions / name / file).write_bytes((FUNCTIONS / name / file).read_bytes())
    before = {
        n: packaging.sha256_file(packaging.build(functions, tmp_path / "x", n)) for n in packaging.FUNCTION_DEPENDENCIES
    }
    (functions / "feedback" / "main.py").write_text((FUNCTIONS / "feedback" / "main.py").read_text() + "\n# changed\n")
    after = {
        n: packaging.sha256_file(packaging.build(functions, tmp_path / "y", n)) for n in packaging.FUNCTION_DEPENDENCIES
    }
    assert [n for n in before if before[n] != after[n]] == ["feedback"]


def test_committed_locks_match_the_declared_dependencies():
    for function, direct in packaging.FUNCTION_DEPENDENCIES.items():
        text = (FUNCTIONS / function / "requirements.txt").read_text()
        pinned = {line.split("==")[0] for line in text.splitlines() if "==" in line}
        assert {packaging._canonical(d) for d in direct} <= pinned, function
        if "scikit-learn" not in direct:
            assert "scikit-learn" not in pinned  # a light function stays light


# What a function zip must never carry: developer tooling everywhere; training-side code in the predictors.
NEVER = ("saikika/tooling/",)
NOT_IN_PREDICTORS = (
    "saikika/model/training.py",
    "saikika/model/report.py",
    "saikika/model/pipeline_file.py",
    "saikika/model/validation.py",
    "saikika/model/catalogue.py",
    "saikika/model/thresholds.py",
    "saikika/cloud/lease.py",
    "saikika/cloud/training_store.py",
)


@pytest.mark.parametrize("function", sorted(packaging.FUNCTION_DEPENDENCIES))
def test_zip_carries_exactly_the_modules_main_imports(tmp_path, function):
    with zipfile.ZipFile(packaging.build(FUNCTIONS, tmp_path, function)) as archive:
        carried = {name for name in archive.namelist() if name.startswith("saikika/")}
    assert carried == {
        module.replace(".", "/") + ("/__init__.py" if module in {"saikika", *_packages(carried)} else ".py")
        for module in packaging.library_modules(FUNCTIONS / function)
    }
    assert not [name for name in carried if name.startswith(NEVER)]
    if function in ("predict", "predict_http"):
        assert not carried & set(NOT_IN_PREDICTORS)
    # Each zip imports: main.py runs from the unpacked folder with nothing but the zip's own saikika.
    assert {f"saikika/handlers/{function}.py", "saikika/core/settings.py"} <= carried


def _packages(carried: set[str]) -> set[str]:
    return {name[: -len("/__init__.py")].replace("/", ".") for name in carried if name.endswith("/__init__.py")}


def test_module_list_follows_the_imports_not_a_list(tmp_path):
    """A new import in main.py brings its module (and what that imports) into the zip; nothing else does."""
    folder = tmp_path / "functions" / "feedback"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text((FUNCTIONS / "feedback" / "requirements.txt").read_text())
    (folder / "main.py").write_text((FUNCTIONS / "feedback" / "main.py").read_text())
    before = set(packaging.library_modules(folder))
    assert "saikika.model.report" not in before
    (folder / "main.py").write_text(
        (FUNCTIONS / "feedback" / "main.py").read_text() + "\nfrom saikika.model import report\n"
    )
    after = set(packaging.library_modules(folder))
    assert {"saikika.model.report", "saikika.core.metrics"} <= after - before


@pytest.mark.parametrize("function", ["retrain", "promote"])
def test_zips_that_load_pipelines_carry_every_saikika_type_they_trust(function):
    """skops imports a pipeline's classes by name at load time, where modulefinder cannot see it: every saikika
    type on the trusted list must come with the zip of a function that loads pipelines."""
    from saikika.model import pipeline_file

    carried = set(packaging.library_modules(FUNCTIONS / function))
    assert "saikika.model.pipeline_file" in carried
    ours = {name.rsplit(".", 1)[0] for name in pipeline_file.TRUSTED_TYPES if name.startswith("saikika.")}
    assert ours and ours <= carried
