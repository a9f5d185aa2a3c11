"""The docs stay true to the tree: links resolve, the README's layer table names exactly the library's modules, the
README stays short, and the benchmark markdown is what its script writes from the committed JSON."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
LIBRARY = REPO / "shared" / "saikika"
README_MAX_LINES = 260


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)

# Each benchmark script and the JSON it renders its markdown from.
BENCH_MARKDOWN = {
    "run.py": "results.json",
    "batch.py": "batch.json",
    "scale.py": "scale.json",
    "chaos.py": "chaos.json",
    "titles_study.py": "titles_study.json",
    "tune_livedoor.py": "tuning.json",
}


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors: the heading lowercased, punctuation but hyphens and underscores dropped, spaces as hyphens."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {resolved.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in relative_links(README)}
    pages = set((REPO / "docs").glob("*.md"))
    assert not pages - linked, "add to the README's Read on list: " + ", ".join(str(p) for p in pages - linked)


def layer_table() -> dict[str, set[str]]:
    """The README's layer table: layer → the module names it lists (backticked, outside the parentheses that
    describe them)."""
    table = {}
    for row in re.findall(r"^\| `saikika\.(\w+)` \| (.+?) \|", README.read_text(encoding="utf-8"), re.MULTILINE):
        layer, cell = row
        while re.search(r"\([^()]*\)", cell):
            cell = re.sub(r"\([^()]*\)", "", cell)
        table[layer] = set(re.findall(r"`(\w+)`", cell))
    return table


def test_the_layer_table_names_exactly_the_modules_of_each_layer():
    table = layer_table()
    layers = {path.name for path in LIBRARY.iterdir() if (path / "__init__.py").exists()}
    assert set(table) == layers, "the README's layer table and the folders under shared/saikika/ differ"
    for layer in layers:
        folder = LIBRARY / layer
        modules = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
        modules |= {path.name for path in folder.iterdir() if (path / "__init__.py").exists()}
        assert table[layer] == modules, (
            f"saikika.{layer}: listed but absent {sorted(table[layer] - modules)}, "
            f"present but not listed {sorted(modules - table[layer])}"
        )


def test_the_layer_table_check_bites():
    """The table parser must see the modules, not the words that describe them: a description in parentheses with
    backticks of its own (`pipeline_file` (`model.skops` …)) names no module."""
    table = layer_table()
    assert "pipeline_file" in table["model"]
    assert "model" not in table["model"] and "skops" not in table["model"]
    assert "cli" in table["tooling"] and "saikika" not in table["tooling"]


def test_the_readme_stays_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move the detail to docs/"


@pytest.mark.parametrize("script", sorted(BENCH_MARKDOWN))
def test_bench_markdown_is_what_its_script_writes_from_the_committed_json(script, tmp_path):
    results = REPO / "bench" / BENCH_MARKDOWN[script]
    shutil.copy(results, tmp_path / results.name)
    subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--out", str(tmp_path / results.name), "--markdown-only"],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    written = (tmp_path / results.name).with_suffix(".md").read_text(encoding="utf-8")
    committed = results.with_suffix(".md").read_text(encoding="utf-8")
    assert written == committed, f"bench/{results.with_suffix('.md').name} was edited by hand or is stale: run " + (
        f"`python bench/{script} --out bench/{results.name} --markdown-only`"
    )
