"""Typed settings, read once from an environment mapping (tests pass their own).

Each field of `Settings` says everything about its variable in one place, through `setting(...)`: the variable's
name (`SAIKIKA_` + the field's name in upper case, unless `env=` names another), its default (the field's own; none:
required), its type (the field's annotation: str, int, float or bool), its bounds or choices, and the one-line
meaning `docs/configuration.md` is generated from (`python -m saikika.tooling.configuration_reference --write`).
One reader (`Variable.read`) parses every field from that, so a new setting is one new field.

A value the reader cannot take is a `ConfigError` naming the variable, never a guess: "2.9" is not an integer, and
a value outside its bounds is refused rather than clamped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from saikika.core import objects
from saikika.core.errors import ConfigError

_SPEC = "saikika.setting"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# model.training.MIN_LABEL_EXAMPLES, what a fit needs of any label (tests/unit/test_settings.py keeps them equal):
# a smaller minimum for new labels could not take effect.
MIN_LABEL_EXAMPLES = 3
_SHA256 = r"[0-9a-f]{64}"


@dataclass(frozen=True)
class Spec:
    """What a field declares about its variable beyond its name, type and default."""

    meaning: str = ""
    env: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # Applied to the text before any check: values read case-insensitively.
    normalise: Callable[[str], str] | None = None
    # A full-match regular expression for text values.
    pattern: str | None = None


def setting(default: Any = dataclasses.MISSING, *, meaning: str, **spec: Any) -> Any:
    """A `Settings` field: its default (omitted: the variable is required), its meaning for the docs, and the
    `Spec` of its variable (`env`, `minimum`, `maximum`, `choices`, `normalise`, `pattern`)."""
    return dataclasses.field(default=default, metadata={_SPEC: Spec(meaning=meaning, **spec)})


def _integer(name: str, raw: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", raw):
        raise ConfigError(f"environment variable {name} must be a whole number, got {raw!r}")
    return int(raw)


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"environment variable {name} must be a finite number, got {raw!r}")
    return value


def _flag(name: str, raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ConfigError(f"environment variable {name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


_PARSERS: dict[type, Callable[[str, str], Any]] = {
    str: lambda _name, raw: raw,
    int: _integer,
    float: _number,
    bool: _flag,
}


@dataclass(frozen=True)
class Variable:
    """One field of `Settings` as the environment sees it."""

    field: str
    name: str
    kind: type
    default: Any
    spec: Spec

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def read(self, env: Mapping[str, str]) -> Any:
        """The field's value from `env`: its default when unset or blank; ConfigError naming the variable when the
        value is malformed or out of bounds."""
        raw = env.get(self.name, "").strip()
        if not raw:
            if self.required:
                raise ConfigError(f"environment variable {self.name} is required but is not set")
            return self.default
        if self.spec.normalise is not None:
            raw = self.spec.normalise(raw)
        value = _PARSERS[self.kind](self.name, raw)
        self._check(value, raw)
        return value

    def _check(self, value: Any, raw: str) -> None:
        spec = self.spec
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"environment variable {self.name} must be one of {', '.join(spec.choices)}, got {raw!r}")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            raise ConfigError(f"environment variable {self.name} must match {spec.pattern}, got {raw!r}")
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f"environment variable {self.name} must be at least {spec.minimum:g}, got {raw!r}")
        if spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"environment variable {self.name} must be at most {spec.maximum:g}, got {raw!r}")


@dataclass(frozen=True, kw_only=True)
class MonitoringSettings:
    """The settings of the loop watching itself ([monitoring](monitoring.md)): a base of `Settings`, read the same
    way, listed after its own fields."""

    live_quality_min_rows: int = setting(
        20, minimum=0, meaning="fewer feedback rows than this: live quality is recorded but never called degraded"
    )
    live_f1_floor: float = setting(0.5, minimum=0, maximum=1, meaning="live micro F1 below this is degraded")
    live_f1_margin: float = setting(
        0.1,
        minimum=0,
        maximum=1,
        meaning="live micro F1 more than this below the champion's offline micro F1 is degraded",
    )
    stall_after_s: float = setting(
        21600.0,
        minimum=0,
        meaning="pending work older than this with no successful run since it arrived: the loop is stalled "
        "([monitoring](monitoring.md#loop-health))",
    )
    stall_failed_runs: int = setting(
        3,
        minimum=1,
        meaning="this many failed runs in a row: the loop is stalled; this many rejected candidates in a row: degraded",
    )
    drift_bound: float = setting(
        0.1,
        minimum=0,
        maximum=1,
        meaning="the Jensen–Shannon divergence (base 2) of a day's (or a batch run's) label mix from the champion's "
        "above which drift is reported (a WARNING `label drift` line; [monitoring](monitoring.md))",
    )
    drift_min_items: int = setting(
        100,
        minimum=1,
        meaning="a day (or a batch run) with fewer predicted items has its drift computed and shown but never judged "
        "above the bound: a handful of items moves any label mix",
    )
    drift_interval_s: float = setting(
        900.0, minimum=0, meaning="today's label drift is recomputed at most this often (one listing of the day)"
    )


@dataclass(frozen=True)
class Settings(MonitoringSettings):
    project: str = setting(meaning="the Google Cloud project id", env="GOOGLE_CLOUD_PROJECT")
    data_bucket: str = setting(meaning="the bucket of training data and feedback")
    models_bucket: str = setting(meaning="the bucket of model versions and the champion pointer")
    predictions_bucket: str = setting(meaning="the bucket of predictions and rejected inputs")
    model_ttl_s: float = setting(
        60.0,
        minimum=0,
        meaning="seconds an instance serves a model before re-checking the champion pointer (a metadata read; the "
        "model is reloaded only if the pointer's generation changed)",
    )
    retrain_min_interval_s: float = setting(300.0, minimum=0, meaning="a new training run starts at most this often")
    retrain_settle_s: float = setting(
        30.0,
        minimum=0,
        meaning="quiet time after the newest pending training file before a run starts (a burst becomes one run; a "
        "steady trickle still trains once the oldest pending file is older than the min interval)",
    )
    retrain_lease_s: float = setting(900.0, minimum=0, meaning="how long the training lease lasts if its holder dies")
    retrain_min_rows: int = setting(
        50, minimum=0, meaning="fewer valid rows than this: the run is skipped and the reason recorded"
    )
    promotion_tolerance: float = setting(
        0.0,
        minimum=0,
        maximum=1,
        meaning="how far below the champion's micro F1 a candidate may be and still be promoted",
    )
    promotion_label_margin: float = setting(
        0.05,
        minimum=0,
        maximum=1,
        meaning="how far (absolute F1) any label both models know may fall before the candidate is rejected",
    )
    promotion_require_holdout: bool = setting(
        False,
        meaning="`true`: candidates are judged only on the trusted holdout `gs://DATA/eval/holdout.jsonl`, never on a "
        "slice of data feedback can shape, and rejected while it is missing",
    )
    log_level: str = setting(
        "INFO", choices=LOG_LEVELS, normalise=str.upper, meaning="`DEBUG` also logs the events a function ignores"
    )
    max_labels: int = setting(
        256,
        minimum=2,
        meaning="at most this many labels are trained, the best supported; the rest are left out with the reason",
    )
    new_label_min_support: int = setting(
        10,
        minimum=MIN_LABEL_EXAMPLES,
        meaning=f"examples a label the champion does not know needs (one it knows: {MIN_LABEL_EXAMPLES}); the rest "
        "are left out with the reason",
    )
    train_in_memory_rows: int = setting(
        50_000, minimum=0, meaning="up to this many rows a run fits in memory; above, it streams in bounded memory"
    )
    train_job_bytes: int = setting(
        64 * 1024 * 1024,
        minimum=0,
        meaning="above this much training data a run is handed to the training job instead of training in the "
        "function (540 s, 4 GiB)",
    )
    training_launcher: str = setting(
        "cloudrun",
        choices=("cloudrun", "local"),
        meaning="where training jobs run: `cloudrun` (`SAIKIKA_TRAINING_JOB`) or `local` (a process; the local stack)",
    )
    training_job: str = setting("", meaning="the Cloud Run job of training runs, `projects/P/locations/R/jobs/J`")
    training_job_timeout_s: float = setting(
        4 * 3600.0,
        minimum=0,
        meaning="a training job not finished after this long is recorded as failed and its work becomes pending again",
    )
    batch_function_max_bytes: int = setting(
        64 * 1024 * 1024,
        minimum=0,
        meaning="batch input files up to this size are predicted in the `batch` function (64 MiB is about 30,000 "
        "items, a minute of scoring); larger ones are handed to a batch job",
    )
    batch_part_bytes: int = setting(
        4 * 1024 * 1024,
        minimum=1,
        meaning="the `batch` function reads and writes a file in parts of this many input bytes (memory holds one part)",
    )
    batch_launcher: str = setting(
        "dataflow",
        choices=("dataflow", "local"),
        meaning="where batch jobs run: `dataflow` (the Flex Template; the `SAIKIKA_DATAFLOW_*` settings) or `local` "
        "(a DirectRunner process; the local stack)",
    )
    dataflow_region: str = setting("", meaning="the region batch jobs are launched in (terraform sets it)")
    dataflow_template: str = setting("", meaning="the Flex Template's `gs://` spec file (terraform sets it)")
    dataflow_service_account: str = setting("", meaning="the batch workers' service account (terraform sets it)")
    dataflow_temp_location: str = setting("", meaning="the batch jobs' `gs://` temp folder (terraform sets it)")
    dataflow_max_workers: int = setting(10, minimum=1, meaning="at most this many batch workers per job")
    dataflow_machine_type: str = setting("n2-standard-2", meaning="the batch workers' machine type")
    dataflow_image: str = setting(
        "", meaning="the Flex Template's image, also the workers' SDK container; empty: the template's default"
    )
    rescore_input: str = setting(
        "",
        meaning="re-score on promotion: a `gs://…/*.jsonl` pattern of the catalogue to predict with each new "
        "champion; empty: off",
    )
    word_vectors: str = setting(
        "",
        meaning="retrain with title word vectors: an object under `word-vectors/` in the models bucket "
        "(`saikika word-vectors push` prints it); empty: n-grams only",
    )
    word_vectors_sha256: str = setting(
        "",
        normalise=str.lower,
        pattern=_SHA256,
        meaning="the sha256 of `SAIKIKA_WORD_VECTORS`, checked before use (a file that differs fails the run)",
    )
    http_log_sampling: float = setting(
        1.0,
        minimum=0,
        maximum=1,
        meaning="the share of `predict_http` requests whose predictions are logged under `predictions/` for BigQuery "
        "and monitoring (written off the request path; [api](api.md))",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every field from `env` (default: the process environment); one ConfigError naming every bad variable."""
        env = os.environ if env is None else env
        values, problems = {}, []
        for variable in VARIABLES:
            try:
                values[variable.field] = variable.read(env)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("; ".join(problems))
        settings = cls(**values)
        _check_together(settings)
        return settings


def _check_together(settings: Settings) -> None:
    """The rules that span fields (or need more than one variable's own spec)."""
    if settings.word_vectors and not objects.is_word_vectors(settings.word_vectors):
        raise ConfigError(
            f"SAIKIKA_WORD_VECTORS must name an object under {objects.WORD_VECTORS_PREFIX} in the "
            f"models bucket, got {settings.word_vectors!r}"
        )
    if settings.word_vectors and not settings.word_vectors_sha256:
        raise ConfigError("SAIKIKA_WORD_VECTORS needs SAIKIKA_WORD_VECTORS_SHA256, the file's sha256 (64 hex digits)")
    buckets = [settings.data_bucket, settings.models_bucket, settings.predictions_bucket]
    if len(set(buckets)) != 3:
        # One shared bucket would let a function's own writes trigger the loop again.
        raise ConfigError(
            "SAIKIKA_DATA_BUCKET, SAIKIKA_MODELS_BUCKET and SAIKIKA_PREDICTIONS_BUCKET must be three different buckets"
        )


def _variables() -> tuple[Variable, ...]:
    hints = typing.get_type_hints(Settings)
    found = []
    inherited = {f.name for f in dataclasses.fields(MonitoringSettings)}
    # Settings' own fields first, then the monitoring ones (dataclasses list a base's fields first).
    for f in sorted(dataclasses.fields(Settings), key=lambda f: f.name in inherited):
        spec = f.metadata.get(_SPEC, Spec())
        if hints[f.name] not in _PARSERS:
            raise TypeError(f"Settings.{f.name}: a setting is str, int, float or bool, not {f.type}")
        found.append(Variable(f.name, spec.env or f"SAIKIKA_{f.name.upper()}", hints[f.name], f.default, spec))
    return tuple(found)


# Every variable, in field order; the ones every deployed function needs, and the optional ones (terraform's
# tests compare against these).
VARIABLES = _variables()
REQUIRED_ENV = tuple(v.name for v in VARIABLES if v.required)
OPTIONAL_ENV = tuple(v.name for v in VARIABLES if not v.required)
