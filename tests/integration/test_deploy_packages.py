"""Deploy smoke test: each zip unpacked into an empty folder, a fresh virtual environment per distinct
requirements.txt that installs it and nothing else, and that venv's `functions-framework --target=<name>`
run from the folder, exactly as the Python buildpack would. Events through the emulator stack must then
give the expected results: a module or dependency missing from a package fails here."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from saikika.cloud import registry
from saikika.core import rows
from saikika.model import catalogue
from saikika.tooling import packaging
from saikika.tooling.local_stack import LocalStack
from tests.integration.helpers import REPO, feedback_rows, publish, wait_for_prediction_lines, wait_until

pytestmark = pytest.mark.emulators


def _pins(requirements: str) -> str:
    return "".join(line + "\n" for line in requirements.splitlines() if line and not line.startswith("#"))


def _install(folder: Path, requirements: Path) -> Path:
    # This interpreter's pip installs into the fresh venv (`--python`): ensurepip in each of six venvs took 4 s
    # apiece. No byte-compiling either: what is checked is which modules the package can import, and the
    # functions compile what they import as they start.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(folder / "bin" / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "-r",
            str(requirements),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return folder


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    unpacked = root / "unpacked"
    by_pins: dict[str, list[str]] = {}
    for function in packaging.FUNCTION_DEPENDENCIES:
        archive = packaging.build(REPO / "functions", root / "build", function)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked / function)
        by_pins.setdefault(_pins((unpacked / function / "requirements.txt").read_text()), []).append(function)
    # Functions whose locks pin the same packages share one fresh venv: same requirements, same environment.
    # One at a time and with symlinks: EnvBuilder's default copies the interpreter and then runs it, and a fork
    # from another thread while that copy is open for writing makes the exec fail with ETXTBSY. Without pip of
    # their own: the packages' requirements are all they hold.
    folders = [root / f"venv-{i}" for i in range(len(by_pins))]
    for folder in folders:
        venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    with ThreadPoolExecutor(max_workers=len(by_pins)) as pool:
        futures = {
            tuple(functions): pool.submit(_install, folder, unpacked / functions[0] / "requirements.txt")
            for folder, functions in zip(folders, by_pins.values())
        }
        venvs = {function: future.result() for functions, future in futures.items() for function in functions}
    return unpacked, venvs


@pytest.fixture(scope="module")
def deployed(packaged, tmp_path_factory):
    unpacked, venvs = packaged
    stack = LocalStack(
        state_dir=tmp_path_factory.mktemp("deployed-stack"),
        functions_dir=unpacked,
        function_command=lambda spec: [str(venvs[spec.name] / "bin" / "functions-framework")],
        extra_env={"SAIKIKA_MODEL_TTL_S": "1", "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "2", "SAIKIKA_RETRAIN_SETTLE_S": "1"},
        retrain_tick_s=1.0,
    ).start()
    yield stack
    stack.stop()


def test_packages_do_not_see_the_development_install(packaged):
    unpacked, venvs = packaged
    probe = subprocess.run(
        [str(venvs["feedback"] / "bin" / "python"), "-c", "import saikika"], cwd="/", capture_output=True, text=True
    )
    assert probe.returncode != 0, "the fresh venv must not have saikika installed: only the zip provides it"
    assert Path(sys.prefix) not in venvs.values()


def test_every_packaged_function_serves_its_events(deployed, model_files):
    client = deployed.storage_client()
    data = client.bucket(deployed.env["SAIKIKA_DATA_BUCKET"])
    models = client.bucket(deployed.env["SAIKIKA_MODELS_BUCKET"])
    predictions = client.bucket(deployed.env["SAIKIKA_PREDICTIONS_BUCKET"])
    publisher = deployed.publisher()

    # retrain (storage event) → promote (storage event): the loop's first champion.
    data.blob("training/base/catalogue.jsonl").upload_from_string(rows.dumps(catalogue.generate(800, seed=5)))
    champion = wait_until(
        "a champion trained and promoted by the packaged functions",
        lambda: registry.read_champion(models),
        timeout_s=180,
    )

    # predict (Pub/Sub) and predict_http (HTTP).
    message_id = publish(deployed, publisher, b'{"id": "pkg-1", "title": "waterproof wireless speaker"}')
    [line] = wait_for_prediction_lines(predictions, message_id)
    assert line["model_version"] == champion.version
    import urllib.request

    request = urllib.request.Request(
        deployed.env["SAIKIKA_PREDICT_URL"],
        headers={"Content-Type": "application/json"},
        data=b'{"instances": [{"id": "pkg-2", "title": "handmade mug"}]}',
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["model_version"] == champion.version

    # feedback (Pub/Sub).
    feedback_id = publish(
        deployed, publisher, b'{"id": "pkg-3", "title": "mug", "labels": ["handmade"]}', topic="feedback"
    )
    assert [r["id"] for r in feedback_rows(data, feedback_id)] == ["pkg-3"]

    # promote also judges a version pushed by hand (saikika models push without --promote).
    registry.push(models, *model_files)
    decision = wait_until(
        "the promote function's decision",
        lambda: registry.read_decision(models, model_files[1]["version"]),
        timeout_s=60,
    )
    assert decision["outcome"] in {"promoted", "rejected"} and decision["candidate_metrics"]
    assert decision["champion_version"] == champion.version
