"""The `saikika` command's shape: every family module is registered, the command tree is the documented one,
and the command starts without the heavy libraries its commands import when they run."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click

from saikika.tooling import cli

# What `saikika --help` offers, sub-commands included: adding a command means adding it here too.
COMMAND_TREE = {
    "batch",
    "catalogue",
    "demo",
    "evaluate",
    "explain",
    "local up",
    "local wait",
    "models list",
    "models promote",
    "models push",
    "models rollback",
    "monitor",
    "package",
    "query",
    "status",
    "train",
    "word-vectors import",
    "word-vectors push",
}


def _paths(group: click.Group, prefix: str = "") -> set[str]:
    found = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        found |= _paths(command, f"{path} ") if isinstance(command, click.Group) else {path}
    return found


def test_the_command_tree_is_the_documented_one():
    assert _paths(cli.main) == COMMAND_TREE


def test_every_module_with_commands_is_registered_on_main():
    # A family module whose COMMANDS are not on `main` would be silently missing from `saikika --help`.
    for module_info in pkgutil.iter_modules(cli.__path__):
        if module_info.name == "__main__":
            continue  # importing it runs the command
        module = importlib.import_module(f"{cli.__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            assert cli.main.commands.get(command.name) is command, f"{module_info.name}: {command.name}"


def test_help_imports_no_heavy_library():
    probe = (
        "import sys\n"
        "from saikika.tooling.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('sklearn', 'skops', 'apache_beam', 'google.cloud.storage', 'google.cloud.pubsub_v1', 'matplotlib')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout
    assert "Commands:" in result.stdout and "word-vectors" in result.stdout


def test_the_package_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "saikika.tooling.cli", "models", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "rollback" in result.stdout
