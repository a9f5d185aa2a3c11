"""The layers and import contracts of pyproject.toml ([tool.importlinter]), checked by import-linter itself,
and shown to bite: the same contracts run against a copy of the package with one forbidden import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = {
    c["id"]: c["name"]
    for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def lint_imports(library_root: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first: the package under test is the one at `library_root`, not the installed one.
    env = {**os.environ, "PYTHONPATH": str(library_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_contract_is_kept():
    result = lint_imports(REPO / "shared")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(verdicts(result.stdout).values()) == {"KEPT"}
    assert f"{len(CONTRACTS)} kept, 0 broken" in result.stdout


def verdicts(output: str) -> dict[str, str]:
    """Contract id → KEPT or BROKEN, from lint-imports' summary (which wraps long names)."""
    summary = " ".join(output.split("Contracts:")[0].split())
    return {
        cid: ("BROKEN" if f"{name} BROKEN" in summary else "KEPT" if f"{name} KEPT" in summary else "?")
        for cid, name in CONTRACTS.items()
    }


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("core/items.py", "import sklearn", "pure-core"),
        ("core/objects.py", "from google.cloud import storage", "pure-core"),
        ("model/catalogue.py", "from google.cloud import storage", "model-without-cloud"),
        ("model/label_model.py", "from saikika.model import training", "light-serving-path"),
        ("cloud/champion_cache.py", "import skops.io", "light-serving-path"),
        ("handlers/retrain.py", "from saikika.tooling import local_stack", "layers"),
        ("model/evaluation.py", "from saikika.cloud import gcs", "layers"),
        ("handlers/predict_http.py", "from saikika.handlers import predict", "independent-handlers"),
        ("handlers/feedback.py", "from google.api_core import exceptions", "handlers-through-cloud"),
    ],
)
def test_a_broken_contract_fails(tmp_path, module, line, contract):
    shutil.copytree(REPO / "shared" / "saikika", tmp_path / "saikika", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "saikika" / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert verdicts(result.stdout)[contract] == "BROKEN", result.stdout
