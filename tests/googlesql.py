"""Every SQL statement the project documents or deploys, and a GoogleSQL front end to analyse them with.

ZetaSQL (PyPI `zetasql`) is BigQuery's own front end: unlike sqlglot or a DuckDB-backed emulator, it rejects what
BigQuery rejects (a CTE named `new`, a column aliased `rows`). Its catalog is built from terraform: the tables'
schemas and hive partition keys as `terraform/bigquery.tf` declares them, the view as its own query resolves, all
under the names the docs use (`PROJECT.saikika.predictions`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests import terraform_hcl

ROOT = Path(__file__).resolve().parents[1]
# The project the docs write; the dataset is terraform's default (var.bigquery_dataset).
DOCS_PROJECT = "PROJECT"

_SQL_BLOCK = re.compile(r"^```sql\s*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_HEREDOC = re.compile(r"<<-?SQL\s*\n(.*?)^\s*SQL\s*$", re.DOTALL | re.MULTILINE)
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_LAYOUT_KEY = re.compile(r"\{(\w+):(\w+)\}")


@dataclass(frozen=True)
class Statement:
    """One SQL statement and where it is written (for a failure to point at)."""

    path: Path
    line: int
    sql: str

    def where(self, message: str = "") -> str:
        """`file:line`, the line of the statement's first line, or of the error when ZetaSQL's message has
        `[at LINE:COLUMN]` (counted from the statement's first line)."""
        at = re.search(r"\[at (\d+):(\d+)\]", message)
        line = self.line + int(at.group(1)) - 1 if at else self.line
        return f"{self.path.relative_to(ROOT)}:{line}"


def doc_files() -> list[Path]:
    """The README and every page under docs/ (the docs are moving there: both are read)."""
    return [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))] if p.is_file()]


def documented_statements() -> list[Statement]:
    found = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for match in _SQL_BLOCK.finditer(text):
            found.append(Statement(path, text.count("\n", 0, match.start(1)) + 1, match.group(1).strip()))
    return found


def _variable_defaults(hcl: dict) -> dict[str, object]:
    return {name: body.get("default") for block in hcl.get("variable", []) for name, body in block.items()}


def _resolver(hcl: dict):
    """Terraform's interpolations in SQL, as a deployment with the defaults resolves them (the project as the docs
    name it). An interpolation not listed here fails the check instead of being guessed."""
    defaults = _variable_defaults(hcl)
    known = {
        "var.project_id": DOCS_PROJECT,
        "google_bigquery_dataset.saikika.dataset_id": defaults["bigquery_dataset"],
    }
    tables = {
        "predictions": terraform_hcl.unwrap(terraform_hcl.local(hcl, "prediction_tables")),
        "feedback": terraform_hcl.unwrap(terraform_hcl.local(hcl, "feedback_tables")),
    }

    def resolve(match: re.Match) -> str:
        expression = match.group(1).strip()
        if expression in known:
            return str(known[expression])
        if expression.startswith("var.") and defaults.get(expression[4:]) is not None:
            return str(defaults[expression[4:]])
        table = re.fullmatch(r'google_bigquery_table\.(\w+)\["(\w+)"\]\.table_id', expression)
        if table and table.group(2) in tables.get(table.group(1), {}):
            return table.group(2)
        raise ValueError(f"no value for the terraform interpolation ${{{expression}}}")

    return resolve


def terraform_statements() -> list[Statement]:
    """Every SQL heredoc in terraform/*.tf (the view's query), its interpolations resolved."""
    resolve = _resolver(terraform_hcl.load())
    found = []
    for path in sorted(terraform_hcl.TERRAFORM.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        for match in _HEREDOC.finditer(text):
            sql = _INTERPOLATION.sub(resolve, match.group(1)).strip()
            found.append(Statement(path, text.count("\n", 0, match.start(1)) + 1, sql))
    return found


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # BigQuery's type name: STRING, DATE, JSON, ...
    repeated: bool = False


def external_tables(hcl: dict) -> dict[str, list[Column]]:
    """Each external table's columns: its schema (the predictions' shared fields and each table's trace fields;
    the feedback row's fields), then its hive partition keys as the CUSTOM layout types them."""
    fields = terraform_hcl.unwrap(terraform_hcl.local(hcl, "prediction_fields"))
    tables = terraform_hcl.unwrap(terraform_hcl.local(hcl, "prediction_tables"))
    feedback_fields = terraform_hcl.unwrap(terraform_hcl.local(hcl, "feedback_fields"))
    feedback_tables = terraform_hcl.unwrap(terraform_hcl.local(hcl, "feedback_tables"))
    schemas = {table: ([*fields, *spec["traces"]], spec["layout"]) for table, spec in tables.items()}
    schemas |= {table: (feedback_fields, spec["layout"]) for table, spec in feedback_tables.items()}
    return {
        table: [Column(f["name"], f["type"], f.get("mode") == "REPEATED") for f in schema]
        + [Column(key, kind) for key, kind in _LAYOUT_KEY.findall(layout)]
        for table, (schema, layout) in schemas.items()
    }


def views(hcl: dict) -> dict[str, str]:
    """Each view's table id and its query (resolved)."""
    resolve = _resolver(hcl)
    found = {}
    for body in terraform_hcl.resources(hcl, "google_bigquery_table").values():
        view = body.get("view")
        if view:
            query = terraform_hcl.unwrap(terraform_hcl.unwrap(view)["query"])
            heredoc = re.fullmatch(r"<<-?(\w+)\n(.*)\n\s*\1\s*", query, re.DOTALL)
            found[body["table_id"]] = _INTERPOLATION.sub(resolve, heredoc.group(2) if heredoc else query).strip()
    return found


def dataset(hcl: dict) -> str:
    return f"{DOCS_PROJECT}.{_variable_defaults(hcl)['bigquery_dataset']}"


# ---- the front end -----------------------------------------------------------------------------------
def _compile_once() -> None:
    """ZetaSQL runs as a 28 MB WebAssembly module that wasmtime compiles in about a minute on this machine; with
    wasmtime's own on-disk cache (~/.cache/wasmtime) later runs start in seconds. The package builds its
    wasmtime Config itself, so the cache is switched on by handing it a Config that has it."""
    import wasmtime
    import zetasql.core.wasm_client as wasm_client

    class CachedConfig(wasmtime.Config):
        def __init__(self) -> None:
            super().__init__()
            self.cache = True

    wasm_client.Config = CachedConfig


class GoogleSQL:
    """A ZetaSQL analyzer over the deployed dataset: the external tables, then each view as its query resolves."""

    def __init__(self, hcl: dict) -> None:
        _compile_once()
        from zetasql.api import Analyzer, CatalogBuilder, TableBuilder
        from zetasql.types import AnalyzerOptions, ErrorMessageMode, LanguageOptions, ZetaSQLBuiltinFunctionOptions

        self._language = LanguageOptions.maximum_features()
        self._analyzer_class, self._builder, self._table_builder = Analyzer, CatalogBuilder, TableBuilder
        # ONE_LINE: the message ends with "[at LINE:COLUMN]" of the statement, which the caller shifts to the file.
        self._options = AnalyzerOptions(
            language_options=self._language, error_message_mode=ErrorMessageMode.ERROR_MESSAGE_ONE_LINE
        )
        self._builtins = ZetaSQLBuiltinFunctionOptions(language_options=self._language)
        self._tables: dict[str, list[tuple[str, object]]] = {
            f"{dataset(hcl)}.{name}": [(c.name, _type(c)) for c in columns]
            for name, columns in external_tables(hcl).items()
        }
        for name, query in views(hcl).items():
            resolved = self.analyze(query)
            self._tables[f"{dataset(hcl)}.{name}"] = [(c.name, c.column.type) for c in resolved.output_column_list]

    def table_names(self) -> list[str]:
        return sorted(self._tables)

    def analyze(self, sql: str):
        """The resolved statement; raises zetasql's ServerError with the analyzer's message when it is not valid."""
        catalog = self._builder("bigquery").with_builtin_functions(self._builtins)
        for name, columns in self._tables.items():
            table = self._table_builder(name)
            for column, kind in columns:
                table.add_column(column, kind)
            catalog.add_table(table.build())
        return self._analyzer_class(self._options, catalog.build()).analyze_statement(sql)


def _type(column: Column):
    from zetasql.api import TypeFactory
    from zetasql.types import TypeKind

    simple = TypeFactory.create_simple_type(getattr(TypeKind, f"TYPE_{_BIGQUERY_TYPES[column.type]}"))
    return TypeFactory.create_array_type(simple) if column.repeated else simple


# BigQuery's schema type names, as ZetaSQL's TypeKind spells them.
_BIGQUERY_TYPES = {
    "STRING": "STRING",
    "BYTES": "BYTES",
    "INTEGER": "INT64",
    "INT64": "INT64",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "NUMERIC",
    "BOOLEAN": "BOOL",
    "BOOL": "BOOL",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIME": "TIME",
    "JSON": "JSON",
}


# ---- the answer a view must give, from the files ----------------------------------------------------------------
def served_quality_by_hand(predictions: list[dict], feedback: list[dict]) -> dict[tuple[str, str], dict]:
    """What the view served_quality must answer, computed in Python from the lines themselves (prediction records
    and feedback rows): each (feedback message, item) once, judged by its item's latest prediction at or before the
    feedback's event time, counted per model version and label."""

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text)

    judged = []
    for key in sorted({(row["message_id"], row["id"]) for row in feedback}):
        row = next(r for r in feedback if (r["message_id"], r["id"]) == key)
        served = [p for p in predictions if p["id"] == row["id"] and at(p["predicted_at"]) <= at(row["event_time"])]
        if served:
            latest = max(served, key=lambda p: (p["predicted_at"], p.get("message_id") or p.get("request_id")))
            judged.append((latest["model_version"], set(row["labels"]), set(latest["labels"])))
    per_version = {version: sum(1 for v, _, _ in judged if v == version) for version, _, _ in judged}
    answer: dict[tuple[str, str], dict] = {}
    for version, confirmed, predicted in judged:
        for label in confirmed | predicted:
            counts = answer.setdefault((version, label), {"tp": 0, "fp": 0, "fn": 0, "rows": per_version[version]})
            counts["tp" if label in confirmed & predicted else "fp" if label in predicted else "fn"] += 1
    return answer


def served_quality_agrees(rows: list[dict], expected: dict[tuple[str, str], dict]) -> bool:
    """Whether the documented served-quality query's rows (precision and recall rounded to 3) are `expected`."""
    if {(r["model_version"], r["label"]) for r in rows} != set(expected):
        return False
    for row in rows:
        counts = expected[(row["model_version"], row["label"])]
        tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
        found = (row["feedback_rows"], row["true_positives"], row["false_positives"], row["false_negatives"])
        precision = round(tp / (tp + fp), 3) if tp + fp else None
        recall = round(tp / (tp + fn), 3) if tp + fn else None
        if found != (counts["rows"], tp, fp, fn) or (row["precision"], row["recall"]) != (precision, recall):
            return False
    return True
