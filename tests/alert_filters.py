"""The log filters terraform deploys (terraform/monitoring.tf), and a Cloud Logging query-language evaluator to hold
them against the lines the code writes.

Cloud Monitoring cannot run here, so each alert policy's and each log-based metric's filter is read from the HCL
(its terraform interpolations resolved as a deployment with the variables' defaults resolves them) and evaluated
against a stdout JSON line turned into the LogEntry Cloud Logging makes of it: the line's object becomes
`jsonPayload`, its `severity` the entry's severity (and `time` its timestamp), and the resource is what the test says
wrote it (a 2nd gen function logs as a `cloud_run_revision` named after the function).

Only the subset of the language the filters use is implemented (https://cloud.google.com/logging/docs/view/
logging-query-language): AND, OR (which binds tighter than AND), NOT and `-`, implicit AND between comparisons,
parentheses; the operators `=`, `!=`, `:` (has, `:*` present), `=~`, `!~` (RE2 search, case-sensitive), `<`,
`<=`, `>`, `>=` (severity by its order, numbers as numbers); quoted strings and bare words; string comparisons are
not case-sensitive. Anything else is a ParseError, never a guess.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from saikika.core import jsonl
from tests import terraform_hcl

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "logs"

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
# Keys of a structured line that become LogEntry fields and leave the payload (Cloud Logging's special fields).
_SPECIAL = {"severity": "severity", "time": "timestamp", "timestamp": "timestamp"}


class ParseError(ValueError):
    """A filter outside the implemented subset, or not a filter at all."""


# ---- the LogEntry a stdout line becomes --------------------------------------------------------------------
def log_entry(line: str | dict, resource_type: str, labels: dict[str, str]) -> dict:
    """The LogEntry Cloud Logging makes of one structured stdout line written by `resource`."""
    payload = json.loads(line) if isinstance(line, str) else dict(line)
    entry: dict = {"resource": {"type": resource_type, "labels": dict(labels)}, "severity": "DEFAULT"}
    for key, field in _SPECIAL.items():
        if key in payload:
            entry[field] = payload.pop(key)
    entry["severity"] = str(entry["severity"]).upper()
    entry["jsonPayload"] = payload
    return entry


# ---- the query language -----------------------------------------------------------------------------------
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>!=|>=|<=|=~|!~|[=:<>])|(?P<paren>[()])'
    r'|(?P<word>[^\s()=:<>!"](?:[^\s()=:<>!"]|"[^"]*")*))'
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(text: str) -> list[_Token]:
    tokens, at = [], 0
    text = text.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            raise ParseError(f"cannot read the filter at {text[at : at + 20]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        tokens.append(_Token(kind, json.loads(value) if kind == "string" else value))
        at = match.end()
    return tokens


class _Parser:
    """expression = conjunction; conjunction = disjunction {["AND"] disjunction};
    disjunction = unary {"OR" unary}; unary = ["NOT" | "-"] (comparison | "(" expression ")")."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ParseError("the filter ends too early")
        self.at += 1
        return token

    def parse(self):
        tree = self.conjunction()
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().text!r}")
        return tree

    def conjunction(self):
        terms = [self.disjunction()]
        while (token := self.peek()) is not None and not (token.kind == "paren" and token.text == ")"):
            if token.kind == "word" and token.text == "AND":
                self.take()
            terms.append(self.disjunction())
        return ("AND", terms) if len(terms) > 1 else terms[0]

    def disjunction(self):
        terms = [self.unary()]
        while (token := self.peek()) is not None and token.kind == "word" and token.text == "OR":
            self.take()
            terms.append(self.unary())
        return ("OR", terms) if len(terms) > 1 else terms[0]

    def unary(self):
        token = self.take()
        if token.kind == "word" and token.text in ("NOT", "-"):
            return ("NOT", self.unary())
        if token.kind == "word" and token.text.startswith("-") and len(token.text) > 1:
            self.tokens.insert(self.at, _Token("word", token.text[1:]))
            return ("NOT", self.unary())
        if token.kind == "paren" and token.text == "(":
            inner = self.conjunction()
            if self.take().text != ")":
                raise ParseError("a parenthesis is not closed")
            return inner
        if token.kind != "word":
            raise ParseError(f"expected a field name, got {token.text!r} (global restrictions are not implemented)")
        operator = self.take()
        if operator.kind != "op":
            raise ParseError(f"expected an operator after {token.text}, got {operator.text!r}")
        value = self.take()
        if value.kind not in ("string", "word"):
            raise ParseError(f"expected a value after {token.text}{operator.text}")
        return ("CMP", token.text, operator.text, value)


def parse(text: str):
    return _Parser(text).parse()


def matches(text: str, entry: dict) -> bool:
    """Whether the filter `text` matches the LogEntry `entry` (see log_entry)."""
    return _evaluate(parse(text), entry)


def _evaluate(tree, entry: dict) -> bool:
    kind = tree[0]
    if kind == "AND":
        return all(_evaluate(t, entry) for t in tree[1])
    if kind == "OR":
        return any(_evaluate(t, entry) for t in tree[1])
    if kind == "NOT":
        return not _evaluate(tree[1], entry)
    _, path, operator, value = tree
    if operator in ("!=", "!~"):
        return not _evaluate(("CMP", path, "=" if operator == "!=" else "=~", value), entry)
    found, field = _field(entry, path)
    if operator == ":" and value.kind == "word" and value.text == "*":
        return found
    if not found:
        return False  # a comparison on a missing field is false (so its NOT is true)
    return _compare(path, field, operator, value.text)


_MISSING = object()


def _field(entry: dict, path: str) -> tuple[bool, object]:
    node: object = entry
    for part in re.findall(r'"[^"]*"|[^.]+', path):
        key = part.strip('"')
        if not isinstance(node, dict) or key not in node:
            return False, _MISSING
        node = node[key]
    return True, node


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _compare(path: str, field: object, operator: str, literal: str) -> bool:
    if operator == "=~":
        return re.search(literal, _text(field)) is not None
    if operator == ":":
        if isinstance(field, list):
            return any(_compare(path, f, ":", literal) for f in field)
        return literal.lower() in _text(field).lower()
    if path == "severity":
        left, right = SEVERITIES.index(str(field).upper()), _severity(literal)
    elif isinstance(field, int | float) and not isinstance(field, bool) and _number(literal) is not None:
        left, right = field, _number(literal)
    else:
        left, right = _text(field).lower(), literal.lower()
        if operator != "=":
            raise ParseError(f"{path}{operator}{literal}: ordering of text is not implemented")
    return {
        "=": left == right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[operator]


def _severity(literal: str) -> int:
    if literal.upper() in SEVERITIES:
        return SEVERITIES.index(literal.upper())
    raise ParseError(f"{literal!r} is not a severity ({', '.join(SEVERITIES)})")


def _number(literal: str) -> float | None:
    try:
        return float(literal)
    except ValueError:
        return None


# ---- the filters as terraform deploys them ----------------------------------------------------------------
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_PATH_PART = re.compile(r'\.(\w+)|\["([^"]*)"\]|\[([^\]]+)\]')


def one(node):
    """python-hcl2 wraps an object value in a list of one."""
    return node[0] if isinstance(node, list) and len(node) == 1 and isinstance(node[0], dict) else node


def _unescape(text: str) -> str:
    """An HCL string literal's escapes (python-hcl2 keeps them in a string that holds an interpolation)."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


class Terraform:
    """terraform/*.tf with the defaults a deployment has: each filter as Cloud Logging receives it."""

    def __init__(self, hcl: dict | None = None) -> None:
        self.hcl = hcl or terraform_hcl.load()
        self.variables = {n: b.get("default") for block in self.hcl["variable"] for n, b in block.items()}
        self.locals = {n: v for block in self.hcl["locals"] for n, v in block.items()}

    def resolve(self, value, each: tuple[str, object] | None = None):
        """A string, list or map with its interpolations replaced (a whole `${x}` by x's value)."""
        if isinstance(value, dict):
            return {k: self.resolve(v, each) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, each) for v in value]
        if not isinstance(value, str):
            return value
        whole = _INTERPOLATION.fullmatch(value)
        if whole:
            return self.resolve(self._lookup(whole.group(1), each), each)
        parts, last = [], 0
        for match in _INTERPOLATION.finditer(value):
            parts += [
                _unescape(value[last : match.start()]),
                str(self.resolve(self._lookup(match.group(1), each), each)),
            ]
            last = match.end()
        return "".join([*parts, _unescape(value[last:])])

    def _lookup(self, expression: str, each):
        """`var.NAME`, `local.NAME`, `each.key`, `each.value`, then `.KEY`, `["KEY"]` or `[EXPRESSION]`."""
        root, rest = re.fullmatch(r"\s*(\w+)(.*?)\s*", expression).groups()
        if root == "each" and each is not None:
            node = {"key": each[0], "value": each[1]}
        elif root in ("var", "local"):
            name = re.match(r"\.(\w+)", rest).group(1)
            node = (self.variables if root == "var" else self.locals)[name]
            rest = rest[len(name) + 1 :]
        else:
            raise ParseError(f"no value for the terraform expression ${{{expression}}}")
        while rest:
            part = _PATH_PART.match(rest)
            if not part:
                raise ParseError(f"cannot follow {rest!r} in ${{{expression}}}")
            key = part.group(1) or part.group(2) or str(self._lookup(part.group(3), each))
            node = one(self.resolve(one(node), each))[key]
            rest = rest[part.end() :]
        return one(node)

    def _for_each(self, body: dict) -> dict:
        source = body.get("for_each")
        return self.resolve(source) if source else {"": None}

    def alert_filters(self) -> dict[str, str]:
        """Each log-match alert policy's filter, by its for_each key (`errors`, `loop_stalled`, ...)."""
        found = {}
        for body in terraform_hcl.resources(self.hcl, "google_monitoring_alert_policy").values():
            for key, value in self._for_each(body).items():
                for condition in body["conditions"]:
                    matched = condition.get("condition_matched_log")
                    if matched:
                        found[key] = self.resolve(terraform_hcl.unwrap(matched)["filter"], (key, value))
        return found

    def metric_filters(self) -> dict[str, str]:
        """Each log-based metric's filter, by its for_each key (`live_micro_f1`, ...)."""
        found = {}
        for body in terraform_hcl.resources(self.hcl, "google_logging_metric").values():
            for key, value in self._for_each(body).items():
                found[key] = self.resolve(body["filter"], (key, value))
        return found

    def metric_extractors(self) -> dict[str, dict]:
        """Each log-based metric's value extractor (or None for a counter) and label extractors."""
        found = {}
        for body in terraform_hcl.resources(self.hcl, "google_logging_metric").values():
            for key, value in self._for_each(body).items():
                found[key] = {
                    "value": self.resolve(body.get("value_extractor"), (key, value)),
                    "labels": self.resolve(body.get("label_extractors"), (key, value)),
                }
        return found

    def function_resources(self) -> dict[str, tuple[str, dict]]:
        """The resource each function and the training job log as, by function key (and `training_job`)."""
        prefix = self.variables["name_prefix"]
        found = {
            key: ("cloud_run_revision", {"service_name": f"{prefix}-{key.replace('_', '-')}"})
            for key in one(self.locals["functions"])
        }
        found["training_job"] = ("cloud_run_job", {"job_name": self.resolve(self.locals["training_job_name"])})
        return found


def extract(extractor: str, entry: dict):
    """A log-based metric's `EXTRACT(field)` applied to an entry (the field's value, or None)."""
    match = re.fullmatch(r"EXTRACT\(([\w.]+)\)", extractor)
    if not match:
        raise ParseError(f"{extractor!r}: only EXTRACT(field) is implemented")
    found, value = _field(entry, match.group(1))
    return value if found else None


def fixture_lines(name: str) -> list[dict]:
    """The stdout lines in tests/fixtures/logs/NAME.jsonl, parsed: lines the code wrote in the integration tests
    (test_health, test_drift and test_live_quality print them with `pytest -s`; those tests also hold each alert
    against the line they capture, so a renamed field fails there first)."""
    path = FIXTURES / f"{name}.jsonl"
    return [json.loads(line) for line in jsonl.lines(path.read_text(encoding="utf-8")) if line.strip()]


# ---- held against the lines the code really writes (the integration tests' captured lines) --------------------
@functools.cache
def deployed() -> Terraform:
    return Terraform()


def fires(name: str, line: dict, writer: str = "retrain") -> bool:
    """Whether the alert (or log-based metric) `name` as terraform deploys it matches `line`, a stdout line the code
    wrote, as Cloud Logging receives it from `writer`'s deployed resource."""
    terraform = deployed()
    filters = {**terraform.metric_filters(), **terraform.alert_filters()}
    kind, labels = terraform.function_resources()[writer]
    return matches(filters[name], log_entry(line, kind, labels))
