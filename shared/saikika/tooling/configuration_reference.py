"""`docs/configuration.md`, generated from `saikika.core.settings.Settings`: every variable, its default, the values
it accepts and its meaning, as the fields declare them. tests/unit/test_settings.py fails when the committed file
differs from what this prints.

    python -m saikika.tooling.configuration_reference           # print it
    python -m saikika.tooling.configuration_reference --write   # update docs/configuration.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from saikika.core.settings import VARIABLES, Variable

DOCS_FILE = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
REGENERATE = "python -m saikika.tooling.configuration_reference --write"
_MIB = 1024 * 1024

INTRO = f"""\
# Configuration

<!-- Generated from saikika.core.settings.Settings by `{REGENERATE}`: edit the fields there, not this file. -->

Every function reads its settings once, at cold start, from environment variables into a frozen
`saikika.core.settings.Settings`, and passes them down; nothing reads the environment later. A missing required
variable, a malformed value (`2.9` for a whole number, `yes` for `true`/`false`, a choice not listed) or a value out
of its bounds fails the start with a message naming the variable: nothing is clamped or guessed. An unset or blank
variable takes its default.

The three buckets must differ: a storage trigger filters by bucket only, and separate buckets are what keep the
loop from triggering itself. `SAIKIKA_WORD_VECTORS` needs `SAIKIKA_WORD_VECTORS_SHA256`.
"""


def _number(value: float) -> str:
    return f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bar would end the table cell


def shown_default(variable: Variable) -> str:
    default = variable.default
    if variable.required:
        return "**required**"
    if default == "":
        return "empty"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, int) and default >= _MIB and default % _MIB == 0:
        return f"`{default}` ({default // _MIB} MiB)"
    if isinstance(default, float):
        return f"`{_number(default)}`"
    return f"`{default}`"


def accepted(variable: Variable) -> str:
    spec = variable.spec
    if spec.choices:
        text = " or ".join(f"`{choice}`" for choice in spec.choices)
    elif variable.kind is bool:
        text = "`true` or `false`"
    elif variable.kind is str:
        text = f"text matching `{spec.pattern}`" if spec.pattern else "text"
    else:
        text = "whole number" if variable.kind is int else "number"
        if spec.minimum is not None and spec.maximum is not None:
            text += f" from {_number(spec.minimum)} to {_number(spec.maximum)}"
        elif spec.minimum is not None:
            text += f" ≥ {_number(spec.minimum)}"
        elif spec.maximum is not None:
            text += f" ≤ {_number(spec.maximum)}"
    return text + (" (any case)" if spec.normalise is not None else "")


def render() -> str:
    """The whole file; ValueError if a field of Settings has no meaning to document."""
    undocumented = [variable.name for variable in VARIABLES if not variable.spec.meaning]
    if undocumented:
        raise ValueError(f"Settings fields without a meaning (give them setting(..., meaning=...)): {undocumented}")
    rows = [f"| `{v.name}` | {shown_default(v)} | {accepted(v)} | {_cell(v.spec.meaning)} |" for v in VARIABLES]
    table = ["| variable | default | accepts | meaning |", "| --- | --- | --- | --- |", *rows]
    return INTRO + "\n" + "\n".join(table) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print (or --write) docs/configuration.md from Settings.")
    parser.add_argument("--write", action="store_true", help=f"update {DOCS_FILE}")
    args = parser.parse_args(argv)
    if args.write:
        DOCS_FILE.parent.mkdir(parents=True, exist_ok=True)
        DOCS_FILE.write_text(render(), encoding="utf-8")
    else:
        print(render(), end="")


if __name__ == "__main__":
    main()
