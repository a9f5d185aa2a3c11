"""Reading terraform/*.tf with python-hcl2 (terraform cannot download providers here, so no `validate`), for
the tests that compare the infrastructure with the code."""

from __future__ import annotations

import json
from pathlib import Path

import hcl2

TERRAFORM = Path(__file__).resolve().parents[1] / "terraform"
ROLES = ("data", "models", "predictions")


def normalise(node):
    """python-hcl2 keeps HCL's quotes on labels and string literals and adds comment keys: drop both, so
    that a literal reads as its text and an expression as `${...}`."""
    if isinstance(node, dict):
        return {normalise(key): normalise(value) for key, value in node.items() if not str(key).startswith("__")}
    if isinstance(node, list):
        return [normalise(value) for value in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return json.loads(node) if "${" not in node else node[1:-1]
    return node


def load() -> dict:
    merged: dict[str, list] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            for key, value in normalise(hcl2.load(handle)).items():
                merged.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return merged


def resources(hcl: dict, kind: str) -> dict[str, dict]:
    return {name: body for block in hcl.get("resource", []) for name, body in block.get(kind, {}).items()}


def local(hcl: dict, name: str):
    return next(block[name] for block in hcl["locals"] if name in block)


def unwrap(value):
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def storage_notifications(hcl: dict) -> list[tuple[str, str, list[str]]]:
    """(bucket role, object name prefix, functions subscribed to its topic) for each bucket notification."""
    buckets = {f"${{google_storage_bucket.{role}.name}}": role for role in ROLES}
    topics = {f"${{google_pubsub_topic.{key}.id}}": key for key in unwrap(local(hcl, "topics"))}
    subscriptions = unwrap(local(hcl, "subscriptions"))
    found = []
    for body in resources(hcl, "google_storage_notification").values():
        topic = topics[unwrap(body["topic"])]
        found.append(
            (
                buckets[unwrap(body["bucket"])],
                unwrap(body["object_name_prefix"]),
                sorted({s["function"] for s in subscriptions.values() if s["topic"] == topic}),
            )
        )
    return found
