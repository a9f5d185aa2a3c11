"""The library stays readable: no function longer than about a screen, no class that does everything.

Counted with the standard library's `ast` (docstrings and comments included, as a reader sees them), over every
module of `saikika`. A function or class past its bound is split into named steps, not exempted here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "shared" / "saikika"
MAX_FUNCTION_LINES = 50
MAX_CLASS_LINES = 150


def definitions() -> list[tuple[str, str, int]]:
    """(kind, where, lines) of every function and class in the library."""
    found = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                where = f"{path.relative_to(LIBRARY.parent)}:{node.lineno} {node.name}"
                found.append((kind, where, node.end_lineno - node.lineno + 1))
    return found


@pytest.mark.parametrize("kind, limit", [("function", MAX_FUNCTION_LINES), ("class", MAX_CLASS_LINES)])
def test_no_definition_outgrows_its_bound(kind, limit):
    too_long = sorted(
        (f"{where} ({lines} lines)" for found, where, lines in definitions() if found == kind and lines > limit),
    )
    assert not too_long, f"{kind}s longer than {limit} lines: " + "; ".join(too_long)


def test_the_count_sees_the_library():
    # A bound that counts nothing cannot fail: the walk must reach every layer.
    where = {entry[1].split("/")[1] for entry in definitions()}
    assert {"core", "model", "cloud", "handlers", "tooling"} <= where
