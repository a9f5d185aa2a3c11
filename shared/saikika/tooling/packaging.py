"""Self-contained, reproducible function packages: `build/functions/<name>.zip` holds `main.py` at the root,
the `saikika` modules that main.py imports beside it (only a function's own folder is uploaded at deploy
time, so a library in a parent folder would not be found: functions-framework-python #265), and
`requirements.txt` pinned exactly.

Which saikika modules go in is computed from the imports (the standard library's `modulefinder`, which
reads every import statement, function-level ones included), never listed by hand: a predictor's zip
holds no training, report, CLI or local-stack code because nothing it runs imports them.

Locks (`functions/<name>/requirements.txt`) are written by `saikika package --lock` from the installed
environment: the transitive closure of each function's direct dependencies, at the installed versions.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from importlib import metadata
from modulefinder import ModuleFinder
from pathlib import Path

from packaging.requirements import Requirement

import saikika

# The folder that holds the `saikika` package (the repo's shared/).
LIBRARY_ROOT = Path(saikika.__file__).resolve().parent.parent

# What each function imports (directly or through the saikika modules it uses), and nothing more. The
# predictors serve the inference arrays, so they need neither scikit-learn nor skops.
_BASE = ("functions-framework", "google-cloud-storage")
_SERVING = (*_BASE, "numpy", "mmh3")
_TRAINING = (*_SERVING, "scikit-learn", "skops")
FUNCTION_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "predict": _SERVING,
    "predict_http": _SERVING,
    "feedback": _BASE,
    "retrain": (*_TRAINING, "matplotlib"),
    "promote": _TRAINING,
    "batch": _SERVING,
}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same sources give the same bytes


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(direct: tuple[str, ...]) -> dict[str, str]:
    """Installed distribution name → version for `direct` and everything they require (markers applied)."""
    pinned: dict[str, str] = {}
    pending = [Requirement(name) for name in direct]
    while pending:
        requirement = pending.pop()
        name = _canonical(requirement.name)
        if name in pinned:
            continue
        distribution = metadata.distribution(requirement.name)
        pinned[name] = distribution.version
        for raw in distribution.requires or []:
            child = Requirement(raw)
            # Extras are not asked for, so requirements that only apply with one are skipped.
            if child.marker is None or child.marker.evaluate({"extra": ""}):
                pending.append(child)
    return dict(sorted(pinned.items()))


def runtime() -> str:
    """The Cloud Functions runtime these locks are for: the Python that resolves them (markers included)."""
    return f"python{sys.version_info.major}{sys.version_info.minor}"


def lock_text(function: str) -> str:
    header = (
        f"# {function}: pinned by `saikika package --lock`; the transitive closure of "
        f"{', '.join(FUNCTION_DEPENDENCIES[function])}\n# runtime: {runtime()}\n"
    )
    return header + "".join(
        f"{name}=={version}\n" for name, version in closure(FUNCTION_DEPENDENCIES[function]).items()
    )


def write_locks(functions_dir: Path) -> list[Path]:
    written = []
    for function in FUNCTION_DEPENDENCIES:
        path = functions_dir / function / "requirements.txt"
        path.write_text(lock_text(function))
        written.append(path)
    return written


def library_modules(function_folder: Path, library_root: Path = LIBRARY_ROOT) -> list[str]:
    """The saikika modules `main.py` imports, directly or through each other, as dotted names."""
    # Searching only the function's folder and the library keeps the scan to saikika's own modules: every
    # other import (standard library, third party) is simply not found, and the requirements cover those.
    finder = ModuleFinder(path=[str(function_folder), str(library_root)])
    finder.run_script(str(function_folder / "main.py"))
    return sorted(name for name in finder.modules if name == "saikika" or name.startswith("saikika."))


def _package_files(functions_dir: Path, library_root: Path, function: str) -> list[tuple[str, Path]]:
    folder = functions_dir / function
    files = [
        (p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    for module in library_modules(folder, library_root):
        path = library_root.joinpath(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        files.append((path.relative_to(library_root).as_posix(), path))
    return sorted(files)


def build(functions_dir: Path, out_dir: Path, function: str, library_root: Path = LIBRARY_ROOT) -> Path:
    folder = functions_dir / function
    if not (folder / "requirements.txt").exists():
        raise FileNotFoundError(f"{folder / 'requirements.txt'} is missing: run `saikika package --lock` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{function}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in _package_files(functions_dir, library_root, function):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return target


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
