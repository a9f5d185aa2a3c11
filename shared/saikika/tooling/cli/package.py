"""`saikika package`: the function zips (and their locks) that terraform deploys."""

from __future__ import annotations

from pathlib import Path

import click

from saikika.tooling.cli.common import console


@click.command("package")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/functions"), show_default=True)
@click.option("--lock", is_flag=True, help="First rewrite functions/<name>/requirements.txt from this environment.")
@click.option("--functions-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def package(out: Path, lock: bool, functions_dir: Path | None) -> None:
    """Build one reproducible zip per function (main.py, the saikika package, pinned requirements.txt)."""
    from saikika.tooling import packaging
    from saikika.tooling.local_stack import find_functions_dir

    functions_dir = functions_dir or find_functions_dir()
    if lock:
        for path in packaging.write_locks(functions_dir):
            console.print(f"locked {path}")
    for function in packaging.FUNCTION_DEPENDENCIES:
        target = packaging.build(functions_dir, out, function)
        print(f"{target}  sha256={packaging.sha256_file(target)}  ({target.stat().st_size:,} bytes)")


COMMANDS = (package,)
