"""Typed settings, read once from an environment mapping (tests pass their own)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from saikika.core import objects
from saikika.core.errors import ConfigError


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise ConfigError(f"environment variable {key} is required but is not set")
    return value


def _positive_float(env: Mapping[str, str], key: str, default: float) -> float:
    """A non-negative number (seconds, rows or a metric margin)."""
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {key} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"environment variable {key} must not be negative, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"environment variable {key} must be true or false, got {env[key]!r}")
    return raw == "true"


def _text(env: Mapping[str, str], key: str, default: str = "") -> str:
    return env.get(key, "").strip() or default


def _choice(env: Mapping[str, str], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _text(env, key, default)
    if value not in choices:
        raise ConfigError(f"environment variable {key} must be one of {', '.join(choices)}, got {value!r}")
    return value


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(env: Mapping[str, str]) -> str:
    value = env.get("SAIKIKA_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if value not in _LEVELS:
        raise ConfigError(f"environment variable SAIKIKA_LOG_LEVEL must be one of {', '.join(_LEVELS)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    project: str
    data_bucket: str
    models_bucket: str
    predictions_bucket: str
    model_ttl_s: float = 60.0
    retrain_min_interval_s: float = 300.0
    # Quiet time after the newest new file before training: a burst becomes one run.
    retrain_settle_s: float = 30.0
    retrain_lease_s: float = 900.0
    retrain_min_rows: int = 50
    promotion_tolerance: float = 0.0
    # How far one label's F1 may fall (absolute) before a candidate is rejected for it.
    promotion_label_margin: float = 0.05
    # Judge only on the trusted holdout file (eval/holdout.jsonl), never on a slice of data feedback can shape.
    promotion_require_holdout: bool = False
    log_level: str = "INFO"
    # The label set: at most max_labels labels (the best supported), and a label the champion does not know yet
    # needs new_label_min_support examples (3 for one it knows). The rest is left out with the reason recorded.
    max_labels: int = 256
    new_label_min_support: int = 10
    # Up to this many rows a run fits in memory (exact, as before); above, it streams in bounded memory.
    train_in_memory_rows: int = 50_000
    # Above this many bytes of training data a run is handed to a training job (Cloud Run jobs; locally a
    # process) instead of training in the function (540 s, 4 GiB).
    train_job_bytes: int = 64 * 1024 * 1024
    # "cloudrun" (SAIKIKA_TRAINING_JOB, projects/P/locations/R/jobs/J) or "local" (a process; the local stack).
    training_launcher: str = "cloudrun"
    training_job: str = ""
    # A training job not finished after this long is recorded as failed and the work becomes pending again.
    training_job_timeout_s: float = 4 * 3600.0
    # Batch files under batch/input/ up to this size are predicted in the function (streamed, in parts of
    # batch_part_bytes); larger ones are handed to a batch job. 64 MiB is about 30,000 marketplace items, a
    # minute of scoring: far inside the function's 540 s.
    batch_function_max_bytes: int = 64 * 1024 * 1024
    batch_part_bytes: int = 4 * 1024 * 1024
    # Where batch jobs run: "dataflow" (the Flex Template; the SAIKIKA_DATAFLOW_* settings) or "local" (a
    # DirectRunner process; the local stack).
    batch_launcher: str = "dataflow"
    dataflow_region: str = ""
    dataflow_template: str = ""
    dataflow_service_account: str = ""
    dataflow_temp_location: str = ""
    dataflow_max_workers: int = 10
    dataflow_machine_type: str = "n2-standard-2"
    # The Flex Template's image, also the workers' SDK container (README, Deploy); empty: the template's default.
    dataflow_image: str = ""
    # Re-score on promotion: a file pattern (gs://…/*.jsonl) of the catalogue to predict with each new champion.
    # Empty (the default): off.
    rescore_input: str = ""
    # Pretrained title word vectors for retraining (`saikika word-vectors import`): an object under word-vectors/
    # in the models bucket and its sha256, checked before use. Empty (the default): n-grams only.
    word_vectors: str = ""
    word_vectors_sha256: str = ""
    # The share of predict_http's requests whose predictions are logged under predictions/ (0 to 1; docs/api.md).
    http_log_sampling: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        settings = cls(
            project=_required(env, "GOOGLE_CLOUD_PROJECT"),
            data_bucket=_required(env, "SAIKIKA_DATA_BUCKET"),
            models_bucket=_required(env, "SAIKIKA_MODELS_BUCKET"),
            predictions_bucket=_required(env, "SAIKIKA_PREDICTIONS_BUCKET"),
            model_ttl_s=_positive_float(env, "SAIKIKA_MODEL_TTL_S", 60.0),
            retrain_min_interval_s=_positive_float(env, "SAIKIKA_RETRAIN_MIN_INTERVAL_S", 300.0),
            retrain_settle_s=_positive_float(env, "SAIKIKA_RETRAIN_SETTLE_S", 30.0),
            retrain_lease_s=_positive_float(env, "SAIKIKA_RETRAIN_LEASE_S", 900.0),
            retrain_min_rows=int(_positive_float(env, "SAIKIKA_RETRAIN_MIN_ROWS", 50)),
            promotion_tolerance=_positive_float(env, "SAIKIKA_PROMOTION_TOLERANCE", 0.0),
            promotion_label_margin=_positive_float(env, "SAIKIKA_PROMOTION_LABEL_MARGIN", 0.05),
            promotion_require_holdout=_flag(env, "SAIKIKA_PROMOTION_REQUIRE_HOLDOUT", False),
            log_level=_log_level(env),
            max_labels=max(2, int(_positive_float(env, "SAIKIKA_MAX_LABELS", 256))),
            new_label_min_support=max(1, int(_positive_float(env, "SAIKIKA_NEW_LABEL_MIN_SUPPORT", 10))),
            train_in_memory_rows=int(_positive_float(env, "SAIKIKA_TRAIN_IN_MEMORY_ROWS", 50_000)),
            train_job_bytes=int(_positive_float(env, "SAIKIKA_TRAIN_JOB_BYTES", 64 * 1024 * 1024)),
            training_launcher=_choice(env, "SAIKIKA_TRAINING_LAUNCHER", ("cloudrun", "local"), "cloudrun"),
            training_job=_text(env, "SAIKIKA_TRAINING_JOB"),
            training_job_timeout_s=_positive_float(env, "SAIKIKA_TRAINING_JOB_TIMEOUT_S", 4 * 3600.0),
            batch_function_max_bytes=int(_positive_float(env, "SAIKIKA_BATCH_FUNCTION_MAX_BYTES", 64 * 1024 * 1024)),
            batch_part_bytes=max(1, int(_positive_float(env, "SAIKIKA_BATCH_PART_BYTES", 4 * 1024 * 1024))),
            batch_launcher=_choice(env, "SAIKIKA_BATCH_LAUNCHER", ("dataflow", "local"), "dataflow"),
            dataflow_region=_text(env, "SAIKIKA_DATAFLOW_REGION"),
            dataflow_template=_text(env, "SAIKIKA_DATAFLOW_TEMPLATE"),
            dataflow_service_account=_text(env, "SAIKIKA_DATAFLOW_SERVICE_ACCOUNT"),
            dataflow_temp_location=_text(env, "SAIKIKA_DATAFLOW_TEMP_LOCATION"),
            dataflow_max_workers=max(1, int(_positive_float(env, "SAIKIKA_DATAFLOW_MAX_WORKERS", 10))),
            dataflow_machine_type=_text(env, "SAIKIKA_DATAFLOW_MACHINE_TYPE", "n2-standard-2"),
            dataflow_image=_text(env, "SAIKIKA_DATAFLOW_IMAGE"),
            rescore_input=_text(env, "SAIKIKA_RESCORE_INPUT"),
            word_vectors=_text(env, "SAIKIKA_WORD_VECTORS"),
            word_vectors_sha256=_text(env, "SAIKIKA_WORD_VECTORS_SHA256").lower(),
            http_log_sampling=_positive_float(env, "SAIKIKA_HTTP_LOG_SAMPLING", 1.0),
        )
        if settings.word_vectors and not objects.is_word_vectors(settings.word_vectors):
            raise ConfigError(
                f"SAIKIKA_WORD_VECTORS must name an object under {objects.WORD_VECTORS_PREFIX} in the "
                f"models bucket, got {settings.word_vectors!r}"
            )
        if settings.word_vectors and not re.fullmatch(r"[0-9a-f]{64}", settings.word_vectors_sha256):
            raise ConfigError(
                "SAIKIKA_WORD_VECTORS needs SAIKIKA_WORD_VECTORS_SHA256, the file's sha256 (64 hex digits)"
            )
        buckets = [settings.data_bucket, settings.models_bucket, settings.predictions_bucket]
        if len(set(buckets)) != 3:
            # One shared bucket would let a function's own writes trigger the loop again.
            raise ConfigError(
                "SAIKIKA_DATA_BUCKET, SAIKIKA_MODELS_BUCKET and SAIKIKA_PREDICTIONS_BUCKET must be three different buckets"
            )
        return settings


# The variables every deployed function needs, and the optional ones; terraform tests compare against these.
REQUIRED_ENV = (
    "GOOGLE_CLOUD_PROJECT",
    "SAIKIKA_DATA_BUCKET",
    "SAIKIKA_MODELS_BUCKET",
    "SAIKIKA_PREDICTIONS_BUCKET",
)
OPTIONAL_ENV = (
    "SAIKIKA_MODEL_TTL_S",
    "SAIKIKA_RETRAIN_MIN_INTERVAL_S",
    "SAIKIKA_RETRAIN_SETTLE_S",
    "SAIKIKA_RETRAIN_LEASE_S",
    "SAIKIKA_RETRAIN_MIN_ROWS",
    "SAIKIKA_PROMOTION_TOLERANCE",
    "SAIKIKA_PROMOTION_LABEL_MARGIN",
    "SAIKIKA_PROMOTION_REQUIRE_HOLDOUT",
    "SAIKIKA_LOG_LEVEL",
    "SAIKIKA_MAX_LABELS",
    "SAIKIKA_NEW_LABEL_MIN_SUPPORT",
    "SAIKIKA_TRAIN_IN_MEMORY_ROWS",
    "SAIKIKA_TRAIN_JOB_BYTES",
    "SAIKIKA_TRAINING_LAUNCHER",
    "SAIKIKA_TRAINING_JOB",
    "SAIKIKA_TRAINING_JOB_TIMEOUT_S",
    "SAIKIKA_BATCH_FUNCTION_MAX_BYTES",
    "SAIKIKA_BATCH_PART_BYTES",
    "SAIKIKA_BATCH_LAUNCHER",
    "SAIKIKA_DATAFLOW_REGION",
    "SAIKIKA_DATAFLOW_TEMPLATE",
    "SAIKIKA_DATAFLOW_SERVICE_ACCOUNT",
    "SAIKIKA_DATAFLOW_TEMP_LOCATION",
    "SAIKIKA_DATAFLOW_MAX_WORKERS",
    "SAIKIKA_DATAFLOW_MACHINE_TYPE",
    "SAIKIKA_DATAFLOW_IMAGE",
    "SAIKIKA_RESCORE_INPUT",
    "SAIKIKA_WORD_VECTORS",
    "SAIKIKA_WORD_VECTORS_SHA256",
    "SAIKIKA_HTTP_LOG_SAMPLING",
)
