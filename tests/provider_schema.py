"""The google provider's schema, read from PyPI's `cdktn-provider-google` wheel, and a check of terraform/*.tf
against it: what `terraform validate` would catch if the provider could be downloaded here.

The wheel (pinned by hash in tests/provider_schema_requirements.txt, fetched by `make provider-schema` into
.cache/provider-schema/) carries a jsii manifest (`cdktn_provider_google/_jsii/provider-google@V.jsii.tgz`,
`package/.jsii`). Each resource class's docs summary names its `google_…` type; its `…Config` interface lists the
arguments and nested blocks, each property's docs link ends in `#terraform_name`, `optional` marks what is not
required, and a property typed by another of the package's interfaces is a nested block with its own properties.
The extracted schema (every resource and data source) is cached as JSON beside the wheel, keyed by the wheel's
name, so later runs read a few MB of JSON instead of unpacking 65 MB.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "tests" / "provider_schema_requirements.txt"
CACHE = ROOT / ".cache" / "provider-schema"
PACKAGE = "@cdktn/provider-google."
_REPRESENTS = re.compile(
    r"Represents a \{@link https://registry\.terraform\.io/providers/hashicorp/google/[\d.]+/docs/"
    r"(resources|data-sources)/\w+ (google_\w+)\}"
)
_ANCHOR = re.compile(r"\{@link https://registry\.terraform\.io/\S+#(\w+) ")
# The cache's format: raise it when `extract` changes what it writes, so an old cache is not read.
SCHEMA_FORMAT = 1
# Terraform's meta-arguments and blocks, valid on every resource (`dynamic` is checked through its content).
META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}


def wheel() -> Path:
    """The pinned wheel in .cache/provider-schema/, or an error saying how to fetch it."""
    pinned = re.search(r"^cdktn-provider-google==(\S+)", REQUIREMENTS.read_text(), re.M).group(1)
    path = CACHE / f"cdktn_provider_google-{pinned}-py3-none-any.whl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `make provider-schema` downloads it (a prerequisite of make test)")
    return path


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _block_type(kind: dict) -> str | None:
    """The package interface a property's type names (directly, in a list, or in a union), if any."""
    if "fqn" in kind:
        return kind["fqn"] if kind["fqn"].startswith(PACKAGE) else None
    if "collection" in kind:
        return _block_type(kind["collection"]["elementtype"])
    if "union" in kind:
        return next((found for t in kind["union"]["types"] if (found := _block_type(t))), None)
    return None


def _properties(types: dict, fqn: str) -> list[dict]:
    found = list(types[fqn].get("properties", []))
    for parent in types[fqn].get("interfaces", []):
        if parent.startswith(PACKAGE):
            found += _properties(types, parent)
    return found


def _block(types: dict, fqn: str, depth: int = 0) -> dict:
    """{"arguments": {name: required}, "blocks": {name: {"required": bool, **block}}} of one interface."""
    arguments, blocks = {}, {}
    for prop in _properties(types, fqn):
        anchor = _ANCHOR.search(prop.get("docs", {}).get("remarks", "") + " ")
        name = anchor.group(1) if anchor else _snake(prop["name"])
        required = not prop.get("optional", False)
        nested = _block_type(prop["type"])
        if nested and types.get(nested, {}).get("kind") == "interface" and depth < 20:
            blocks[name] = {"required": required, **_block(types, nested, depth + 1)}
        else:
            arguments[name] = required
    return {"arguments": arguments, "blocks": blocks}


def extract(wheel_path: Path) -> dict[str, dict[str, dict]]:
    """{"resource": {google_type: block}, "data": {google_type: block}} from the wheel's jsii manifest."""
    with zipfile.ZipFile(wheel_path) as archive:
        [member] = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(archive.read(member))) as tar:
            types = json.load(tar.extractfile("package/.jsii"))["types"]
    schema: dict[str, dict[str, dict]] = {"resource": {}, "data": {}}
    for fqn, body in types.items():
        represents = _REPRESENTS.search(body.get("docs", {}).get("summary", ""))
        if represents and body.get("kind") == "class" and f"{fqn}Config" in types:
            kind = "resource" if represents.group(1) == "resources" else "data"
            schema[kind][represents.group(2)] = _block(types, f"{fqn}Config")
    return schema


def load() -> dict[str, dict[str, dict]]:
    """The schema, from the JSON cache beside the wheel (written on first use)."""
    path = wheel()
    cached = CACHE / f"{path.stem}.schema-v{SCHEMA_FORMAT}.json"
    if not cached.is_file():
        schema = extract(path)
        temporary = cached.with_suffix(".tmp")
        temporary.write_text(json.dumps(schema, sort_keys=True), encoding="utf-8")
        temporary.replace(cached)
    return json.loads(cached.read_text(encoding="utf-8"))


# ---- the check --------------------------------------------------------------------------------------------
def _bodies(value) -> list[dict]:
    """A nested block's bodies as python-hcl2 gives them (a list of objects, or one object)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []  # an expression (e.g. a whole object from a variable): nothing to check statically


def check_body(block: dict, body: dict, where: str) -> list[str]:
    """Problems of one resource (or nested block) body against its schema block."""
    problems = []
    present = set(body)
    for dynamic in _bodies(body.get("dynamic", [])):
        for name, spec in dynamic.items():
            present.add(name)
            if name not in block["blocks"]:
                problems.append(f"{where}: unknown dynamic block {name!r}")
                continue
            for inner in _bodies(spec):
                for content in _bodies(inner.get("content", [])):
                    problems += check_body(block["blocks"][name], content, f"{where}.{name}")
    for name, value in body.items():
        if name in META or name == "dynamic":
            continue
        if name in block["blocks"]:
            for nested in _bodies(value):
                problems += check_body(block["blocks"][name], nested, f"{where}.{name}")
        elif name not in block["arguments"]:
            problems.append(f"{where}: unknown argument or block {name!r}")
    required = [n for n, r in block["arguments"].items() if r] + [
        n for n, b in block["blocks"].items() if b["required"]
    ]
    problems += [f"{where}: missing required {name!r}" for name in required if name not in present]
    return problems


def check(hcl: dict, schema: dict) -> list[str]:
    """Problems of every resource and data source in `hcl` (tests.terraform_hcl.load()) against the schema."""
    problems = []
    for kind in ("resource", "data"):
        for block in hcl.get(kind, []):
            for google_type, named in block.items():
                for name, body in named.items():
                    where = f"{'data.' if kind == 'data' else ''}{google_type}.{name}"
                    if google_type not in schema[kind]:
                        problems.append(f"{where}: no such {kind} in the google provider")
                        continue
                    problems += check_body(schema[kind][google_type], body, where)
    return problems
