"""A user's mistakes at the command line: each is one line on stderr saying what is wrong and what to do, a
non-zero exit, and no traceback unless asked for (`saikika --debug`, SAIKIKA_LOG_LEVEL=DEBUG). Run as a person
runs them: the real commands, in a subprocess or through click's runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from saikika.core import rows
from saikika.model import artifact, catalogue
from saikika.tooling.cli import main

SETTINGS = {
    "GOOGLE_CLOUD_PROJECT": "saikika-local",
    "SAIKIKA_DATA_BUCKET": "saikika-data",
    "SAIKIKA_MODELS_BUCKET": "saikika-models",
    "SAIKIKA_PREDICTIONS_BUCKET": "saikika-predictions",
}
NOT_UTF8 = '{"id": "x", "title": "caf\xe9", "labels": ["kids"]}'.encode("latin-1")


def saikika(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SAIKIKA_", "STORAGE_EMULATOR", "GOOGLE_"))}
    return subprocess.run(
        [sys.executable, "-m", "saikika.tooling.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(result) -> str:
    """The error line of a failed command, after checking it is the only thing it said."""
    assert result.returncode != 0 if hasattr(result, "returncode") else result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def invoke(*args: str, **env: str):
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def model_dir(tmp_path, model_files) -> Path:
    artifact.write_dir(tmp_path / "model", model_files)
    return tmp_path / "model"


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_missing_input_file_is_named(tmp_path, model_dir, command):
    model = ("--model", str(model_dir)) if command == "evaluate" else ("--out", str(tmp_path / "out"))
    result = invoke(command, "--data", str(tmp_path / "nope.jsonl"), *model)
    assert result.exit_code == 1
    assert one_line_error(result) == f"Error: {tmp_path / 'nope.jsonl'}: no such file or folder; check the path"


def test_a_folder_given_as_input_is_named(tmp_path):
    result = invoke("train", "--data", str(tmp_path), "--out", str(tmp_path / "out"))
    assert one_line_error(result) == f"Error: {tmp_path} is a folder; name a file"


def test_debug_shows_the_traceback(tmp_path):
    asked = saikika("--debug", "train", "--data", "nope.jsonl", "--out", "out", cwd=tmp_path)
    by_level = saikika("train", "--data", "nope.jsonl", "--out", "out", cwd=tmp_path, SAIKIKA_LOG_LEVEL="debug")
    plain = saikika("train", "--data", "nope.jsonl", "--out", "out", cwd=tmp_path)
    for result in (asked, by_level):
        assert result.returncode == 1 and "Traceback" in result.stderr and "FileNotFoundError" in result.stderr
    assert one_line_error(plain) == "Error: nope.jsonl: no such file or folder; check the path"


def test_out_into_a_folder_that_does_not_exist_yet_creates_it(tmp_path):
    result = invoke("catalogue", "--rows", "20", "--out", str(tmp_path / "big" / "big.jsonl"))
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "big" / "big.jsonl").read_text().splitlines()) == 20


def test_evaluate_out_into_a_new_folder(tmp_path, model_dir):
    data = tmp_path / "rows.jsonl"
    data.write_text(rows.dumps(catalogue.generate(40, seed=3)), encoding="utf-8")
    result = invoke("evaluate", "--model", str(model_dir), "--data", str(data), "--out", str(tmp_path / "e" / "m.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e" / "m.json").read_text())["rows"] == 40


def _with_bad_lines(path: Path, items) -> None:
    lines = rows.dumps(items).encode("utf-8").splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:5], NOT_UTF8 + b"\n", *lines[5:], b"not json\n"]))


def test_a_line_that_is_not_utf8_is_skipped_and_counted_with_its_line_number(tmp_path):
    data = tmp_path / "train.jsonl"
    _with_bad_lines(data, catalogue.generate(300, seed=5))
    result = invoke("train", "--data", str(data), "--out", str(tmp_path / "model"))
    assert result.exit_code == 0, result.output
    told = " ".join(result.stderr.split())
    assert f"2 invalid row(s) skipped: {data} lines 6, 302 (first: line is not UTF-8" in told, told
    assert json.loads((tmp_path / "model" / "metadata.json").read_text())["invalid_rows"] == 2


def test_evaluate_skips_a_line_that_is_not_utf8(tmp_path, model_dir):
    data = tmp_path / "rows.jsonl"
    _with_bad_lines(data, catalogue.generate(30, seed=6))
    result = invoke("evaluate", "--model", str(model_dir), "--data", str(data), "--out", str(tmp_path / "m.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.json").read_text())["invalid_rows"] == 2
    assert "lines 6, 32" in " ".join(result.stderr.split())


def test_rows_decode_each_line_on_its_own():
    invalid: list[dict] = []
    lines = [b'{"id": "a", "title": "t", "labels": ["x"]}\n', NOT_UTF8 + b"\n", '{"id": "b", "title": "é"}\n']
    parsed = list(rows.training_rows("f", lines, 0.0, rows.BASE_RANK, invalid))
    assert [row.item.id for row in parsed] == ["a"]
    assert [(bad["line"], bad["error"][:18]) for bad in invalid] == [
        (2, "line is not UTF-8:"),
        (3, "'labels' is requir"),
    ]


def test_a_pattern_that_matches_no_file_is_an_error(tmp_path, model_dir):
    result = saikika("batch", "--input", "nothing/*.jsonl", "--output", "out", "--model", str(model_dir), cwd=tmp_path)
    assert one_line_error(result).startswith("Error: no file matches --input nothing/*.jsonl")
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_neither_folder_nor_version_without_settings(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": "a", "title": "t"}\n')
    result = saikika("batch", "--input", "in.jsonl", "--output", "out", "--model", "nomodel/", cwd=tmp_path)
    line = one_line_error(result)
    assert line.startswith("Error: no model folder nomodel/; for a version 'nomodel/': ")
    assert "GOOGLE_CLOUD_PROJECT is required" in line


@pytest.mark.parametrize(
    "args",
    [
        ("models", "list"),
        ("models", "rollback"),
        ("batch", "--input", "in.jsonl"),
        ("batch", "--input", "gs://saikika-data/*.jsonl", "--model", ".", "--output", "out"),
        ("train", "--data", "gs://saikika-data/catalogue.jsonl", "--out", "model"),
    ],
)
def test_an_unreachable_stack_is_one_line_within_seconds(tmp_path, args):
    (tmp_path / "in.jsonl").write_text('{"id": "a", "title": "t"}\n')
    # Port 1 on localhost: nothing listens, as when `saikika local up` was stopped with local.env still sourced.
    result = saikika(*args, cwd=tmp_path, STORAGE_EMULATOR_HOST="http://127.0.0.1:1", **SETTINGS)
    assert one_line_error(result) == (
        "Error: cannot reach Cloud Storage at http://127.0.0.1:1: is `saikika local up` running? "
        "(STORAGE_EMULATOR_HOST points there)"
    )


def test_a_bug_keeps_its_traceback():
    from saikika.tooling.cli.mistakes import one_line

    assert one_line(KeyError("x")) is None and one_line(TypeError("y")) is None


def test_a_mistyped_option_is_refused_not_dropped_by_beam(tmp_path, model_dir):
    # Beam would discard `--ouput x/` with a warning and write to the default output instead.
    (tmp_path / "in.jsonl").write_text('{"id": "a", "title": "t"}\n')
    result = saikika("batch", "--input", "in.jsonl", "--ouput", "x/", "--model", str(model_dir), cwd=tmp_path)
    assert one_line_error(result).startswith("Error: no such option: --ouput")
    assert not (tmp_path / "x").exists()
    known = saikika(
        "batch", "--input", "in.jsonl", "--output", "out", "--model", str(model_dir), "--direct_num_workers=1",
        cwd=tmp_path,
    )  # fmt: skip
    assert known.returncode == 0, known.stderr


def test_missing_settings_are_one_line_and_their_traceback_with_debug(tmp_path):
    # No settings and no running local stack in this folder: what to do, in one line; --debug shows where.
    told = one_line_error(saikika("status", cwd=tmp_path))
    assert "SAIKIKA_MODELS_BUCKET is required" in told and "start the local stack (saikika local up" in told
    debugged = saikika("--debug", "status", cwd=tmp_path)
    assert debugged.returncode == 1 and "Traceback" in debugged.stderr and "ConfigError" in debugged.stderr
