"""The library stays readable: no function longer than about a screen, no class that does everything.

Counted with the standard library's `ast` (docstrings and comments included, as a reader sees them), over every
module of `saikika`. A function or class past its bound is split into named steps, not exempted here. One more
shape is checked over the whole tree: JSON lines are never split with `str.splitlines()`.
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


TREE = LIBRARY.parents[1]
_LOOPS = (ast.For, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _calls(node: ast.AST, names: set[str]) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in names for n in ast.walk(node)
    )


def json_read_from_splitlines(source: str) -> list[int]:
    """Lines of loops that parse JSON out of `str.splitlines()`: it also splits at U+2028, U+0085 and other
    separators that JSONL holds raw inside strings (`saikika.core.jsonl.lines` splits at "\\n" alone). Twice a
    schemathesis-generated id was read as two lines that way."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.For):
            iters, bodies = [node.iter], node.body
        elif isinstance(node, _LOOPS):
            iters = [g.iter for g in node.generators]
            bodies = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        else:
            continue
        if any(_calls(i, {"splitlines"}) for i in iters) and any(_calls(b, {"loads"}) for b in bodies):
            found.append(node.lineno)
    return found


def test_json_lines_are_never_split_with_splitlines():
    offences = [
        f"{path.relative_to(TREE)}:{line}"
        for folder in ("shared", "tests", "bench", "functions", "dataflow", "training_job")
        for path in sorted((TREE / folder).rglob("*.py"))
        for line in json_read_from_splitlines(path.read_text(encoding="utf-8"))
    ]
    assert not offences, "read JSONL with saikika.core.jsonl.lines, not str.splitlines(): " + ", ".join(offences)


def test_the_splitlines_check_sees_both_shapes():
    # The check above must be able to fail: a comprehension and a for loop, as the two readers it caught were.
    assert json_read_from_splitlines("[json.loads(x) for x in text.splitlines()]") == [1]
    assert json_read_from_splitlines("for x in t.splitlines():\n    e = json.loads(x)\n") == [1]
    assert json_read_from_splitlines("[x for x in jsonl.lines(text)]") == []
