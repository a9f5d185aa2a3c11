import math

import pytest

from saikika.core import settings as settings_module
from saikika.core.errors import ConfigError, SaikikaError
from saikika.core.settings import OPTIONAL_ENV, REQUIRED_ENV, VARIABLES, Settings
from saikika.tooling import configuration_reference

BASE = {
    "GOOGLE_CLOUD_PROJECT": "p",
    "SAIKIKA_DATA_BUCKET": "d",
    "SAIKIKA_MODELS_BUCKET": "m",
    "SAIKIKA_PREDICTIONS_BUCKET": "x",
}
DIGEST = "ab" * 32

# Every variable: (field, its default, a value to set, what that value reads as). Written out rather than derived
# from the fields, so a renamed variable or a changed default fails here.
EVERY_VARIABLE = {
    "GOOGLE_CLOUD_PROJECT": ("project", None, "my-project", "my-project"),
    "SAIKIKA_DATA_BUCKET": ("data_bucket", None, "data", "data"),
    "SAIKIKA_MODELS_BUCKET": ("models_bucket", None, "models", "models"),
    "SAIKIKA_PREDICTIONS_BUCKET": ("predictions_bucket", None, "predictions", "predictions"),
    "SAIKIKA_MODEL_TTL_S": ("model_ttl_s", 60.0, "2.5", 2.5),
    "SAIKIKA_RETRAIN_MIN_INTERVAL_S": ("retrain_min_interval_s", 300.0, "0", 0.0),
    "SAIKIKA_RETRAIN_SETTLE_S": ("retrain_settle_s", 30.0, "1", 1.0),
    "SAIKIKA_RETRAIN_LEASE_S": ("retrain_lease_s", 900.0, "60", 60.0),
    "SAIKIKA_RETRAIN_MIN_ROWS": ("retrain_min_rows", 50, "7", 7),
    "SAIKIKA_PROMOTION_TOLERANCE": ("promotion_tolerance", 0.0, "0.01", 0.01),
    "SAIKIKA_PROMOTION_LABEL_MARGIN": ("promotion_label_margin", 0.05, "0.1", 0.1),
    "SAIKIKA_PROMOTION_REQUIRE_HOLDOUT": ("promotion_require_holdout", False, "TRUE", True),
    "SAIKIKA_LOG_LEVEL": ("log_level", "INFO", "debug", "DEBUG"),
    "SAIKIKA_MAX_LABELS": ("max_labels", 256, "4", 4),
    "SAIKIKA_NEW_LABEL_MIN_SUPPORT": ("new_label_min_support", 10, "3", 3),
    "SAIKIKA_TRAIN_IN_MEMORY_ROWS": ("train_in_memory_rows", 50_000, "1000", 1000),
    "SAIKIKA_TRAIN_JOB_BYTES": ("train_job_bytes", 64 * 1024 * 1024, "1000", 1000),
    "SAIKIKA_TRAINING_LAUNCHER": ("training_launcher", "cloudrun", "local", "local"),
    "SAIKIKA_TRAINING_JOB": ("training_job", "", "projects/p/locations/r/jobs/j", "projects/p/locations/r/jobs/j"),
    "SAIKIKA_TRAINING_JOB_TIMEOUT_S": ("training_job_timeout_s", 4 * 3600.0, "600", 600.0),
    "SAIKIKA_BATCH_FUNCTION_MAX_BYTES": ("batch_function_max_bytes", 64 * 1024 * 1024, "1000000", 1_000_000),
    "SAIKIKA_BATCH_PART_BYTES": ("batch_part_bytes", 4 * 1024 * 1024, "4096", 4096),
    "SAIKIKA_BATCH_LAUNCHER": ("batch_launcher", "dataflow", "local", "local"),
    "SAIKIKA_DATAFLOW_REGION": ("dataflow_region", "", "asia-northeast1", "asia-northeast1"),
    "SAIKIKA_DATAFLOW_TEMPLATE": ("dataflow_template", "", "gs://t/b.json", "gs://t/b.json"),
    "SAIKIKA_DATAFLOW_SERVICE_ACCOUNT": ("dataflow_service_account", "", "w@p.iam", "w@p.iam"),
    "SAIKIKA_DATAFLOW_TEMP_LOCATION": ("dataflow_temp_location", "", "gs://t/temp", "gs://t/temp"),
    "SAIKIKA_DATAFLOW_MAX_WORKERS": ("dataflow_max_workers", 10, " 4 ", 4),
    "SAIKIKA_DATAFLOW_MACHINE_TYPE": ("dataflow_machine_type", "n2-standard-2", "n2-highmem-4", "n2-highmem-4"),
    "SAIKIKA_DATAFLOW_IMAGE": ("dataflow_image", "", "asia-docker.pkg.dev/p/r/b:1", "asia-docker.pkg.dev/p/r/b:1"),
    "SAIKIKA_RESCORE_INPUT": ("rescore_input", "", "gs://c/*.jsonl", "gs://c/*.jsonl"),
    "SAIKIKA_WORD_VECTORS": ("word_vectors", "", "word-vectors/ja.npz", "word-vectors/ja.npz"),
    "SAIKIKA_WORD_VECTORS_SHA256": ("word_vectors_sha256", "", DIGEST.upper(), DIGEST),
    "SAIKIKA_HTTP_LOG_SAMPLING": ("http_log_sampling", 1.0, "0.25", 0.25),
    "SAIKIKA_LIVE_QUALITY_MIN_ROWS": ("live_quality_min_rows", 20, "5", 5),
    "SAIKIKA_LIVE_F1_FLOOR": ("live_f1_floor", 0.5, "0.7", 0.7),
    "SAIKIKA_LIVE_F1_MARGIN": ("live_f1_margin", 0.1, "0.05", 0.05),
    "SAIKIKA_STALL_AFTER_S": ("stall_after_s", 21600.0, "600", 600.0),
    "SAIKIKA_STALL_FAILED_RUNS": ("stall_failed_runs", 3, "2", 2),
    "SAIKIKA_DRIFT_BOUND": ("drift_bound", 0.1, "0.2", 0.2),
    "SAIKIKA_DRIFT_MIN_ITEMS": ("drift_min_items", 100, "20", 20),
    "SAIKIKA_DRIFT_INTERVAL_S": ("drift_interval_s", 900.0, "60", 60.0),
}
# Set together or not at all (a cross-field rule).
COMPANIONS = {
    "SAIKIKA_WORD_VECTORS": {"SAIKIKA_WORD_VECTORS_SHA256": DIGEST},
}
INTEGERS = [v.name for v in VARIABLES if v.kind is int]
BOUNDS = [(v.name, "minimum", v.spec.minimum) for v in VARIABLES if v.spec.minimum is not None] + [
    (v.name, "maximum", v.spec.maximum) for v in VARIABLES if v.spec.maximum is not None
]


def test_the_table_names_every_variable_once():
    assert list(EVERY_VARIABLE) == [v.name for v in VARIABLES] == [*REQUIRED_ENV, *OPTIONAL_ENV]
    assert REQUIRED_ENV == tuple(name for name, (_, default, _, _) in EVERY_VARIABLE.items() if default is None)


@pytest.mark.parametrize("name", [name for name in EVERY_VARIABLE if name not in REQUIRED_ENV])
def test_unset_or_blank_takes_the_default(name):
    field, default, _, _ = EVERY_VARIABLE[name]
    assert getattr(Settings.from_env(BASE), field) == default
    assert getattr(Settings.from_env({**BASE, name: "  "}), field) == default


@pytest.mark.parametrize("name", list(EVERY_VARIABLE))
def test_a_set_value_is_read(name):
    field, _, raw, expected = EVERY_VARIABLE[name]
    settings = Settings.from_env({**BASE, **COMPANIONS.get(name, {}), name: raw})
    assert getattr(settings, field) == expected
    assert type(getattr(settings, field)) is type(expected)


@pytest.mark.parametrize("name", INTEGERS)
@pytest.mark.parametrize("raw", ["2.9", "1e3", "10.0", "ten", "0x10"])
def test_an_integer_is_a_whole_number(name, raw):
    with pytest.raises(ConfigError, match=rf"{name} must be a whole number, got '{raw}'"):
        Settings.from_env({**BASE, name: raw})


@pytest.mark.parametrize("name, side, bound", BOUNDS)
def test_a_value_out_of_bounds_is_refused_not_clamped(name, side, bound):
    variable = next(v for v in VARIABLES if v.name == name)
    step = 1 if variable.kind is int else 0.5
    outside = bound - step if side == "minimum" else bound + step
    raw = str(int(outside)) if variable.kind is int else str(outside)
    word = "at least" if side == "minimum" else "at most"
    with pytest.raises(ConfigError, match=rf"{name} must be {word} {bound:g}, got '{raw}'"):
        Settings.from_env({**BASE, name: raw})
    # The bound itself is accepted.
    edge = str(int(bound)) if variable.kind is int else str(bound)
    assert getattr(Settings.from_env({**BASE, name: edge}), variable.field) == bound


@pytest.mark.parametrize(
    "name, raw, bound",
    [
        ("SAIKIKA_MAX_LABELS", "1", "at least 2"),
        ("SAIKIKA_BATCH_PART_BYTES", "0", "at least 1"),
        ("SAIKIKA_DATAFLOW_MAX_WORKERS", "0", "at least 1"),
        ("SAIKIKA_NEW_LABEL_MIN_SUPPORT", "1", "at least 3"),
        ("SAIKIKA_RETRAIN_LEASE_S", "-1", "at least 0"),
        ("SAIKIKA_TRAINING_JOB_TIMEOUT_S", "-0.5", "at least 0"),
        ("SAIKIKA_PROMOTION_TOLERANCE", "1.5", "at most 1"),
    ],
)
def test_the_bounds_that_were_clamped_are_errors(name, raw, bound):
    with pytest.raises(ConfigError, match=rf"{name} must be {bound}, got '{raw}'"):
        Settings.from_env({**BASE, name: raw})


def test_the_minimum_for_new_labels_is_what_a_fit_needs():
    from saikika.model import training

    assert settings_module.MIN_LABEL_EXAMPLES == training.MIN_LABEL_EXAMPLES


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_a_number_is_finite(raw):
    with pytest.raises(ConfigError, match=rf"SAIKIKA_MODEL_TTL_S must be a finite number, got '{raw}'"):
        Settings.from_env({**BASE, "SAIKIKA_MODEL_TTL_S": raw})
    assert math.isfinite(Settings.from_env(BASE).model_ttl_s)


@pytest.mark.parametrize(
    "name, raw",
    [
        ("SAIKIKA_TRAINING_LAUNCHER", "cloud-run"),
        ("SAIKIKA_BATCH_LAUNCHER", "beam"),
        ("SAIKIKA_LOG_LEVEL", "verbose"),
    ],
)
def test_an_unknown_choice_is_refused(name, raw):
    variable = next(v for v in VARIABLES if v.name == name)
    with pytest.raises(ConfigError, match=rf"{name} must be one of {', '.join(variable.spec.choices)}"):
        Settings.from_env({**BASE, name: raw})


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**BASE, "SAIKIKA_MAX_LABELS": "2.9", "SAIKIKA_MODEL_TTL_S": "-1"})
    assert "SAIKIKA_MAX_LABELS" in str(raised.value) and "SAIKIKA_MODEL_TTL_S" in str(raised.value)
    assert isinstance(raised.value, SaikikaError) and isinstance(raised.value, ValueError)


def test_the_configuration_reference_is_generated_from_settings():
    committed = configuration_reference.DOCS_FILE.read_text(encoding="utf-8")
    assert committed == configuration_reference.render(), (
        f"docs/configuration.md differs from Settings: run `.venv/bin/{configuration_reference.REGENERATE}`"
    )


def test_the_reference_documents_every_variable_and_marks_the_required():
    rendered = configuration_reference.render()
    for variable in VARIABLES:
        [row] = [line for line in rendered.splitlines() if line.startswith(f"| `{variable.name}` |")]
        assert variable.spec.meaning and variable.spec.meaning in row
        assert ("**required**" in row) == variable.required


def test_reads_required_and_defaults():
    settings = Settings.from_env(BASE)
    assert (settings.project, settings.data_bucket, settings.models_bucket, settings.predictions_bucket) == (
        "p",
        "d",
        "m",
        "x",
    )
    assert settings.model_ttl_s == 60.0
    assert not hasattr(settings, "max_event_age_s")  # no age limit: a backlog is handled, not expired


@pytest.mark.parametrize("missing", REQUIRED_ENV)
def test_missing_variable_is_named(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


def test_malformed_number_is_named():
    with pytest.raises(ConfigError, match="SAIKIKA_MODEL_TTL_S.*'soon'"):
        Settings.from_env({**BASE, "SAIKIKA_MODEL_TTL_S": "soon"})
    with pytest.raises(ConfigError, match="SAIKIKA_RETRAIN_MIN_ROWS"):
        Settings.from_env({**BASE, "SAIKIKA_RETRAIN_MIN_ROWS": "-1"})


def test_ttl_is_parsed():
    assert Settings.from_env({**BASE, "SAIKIKA_MODEL_TTL_S": "2.5"}).model_ttl_s == 2.5


def test_buckets_must_differ():
    with pytest.raises(ConfigError, match="three different buckets"):
        Settings.from_env({**BASE, "SAIKIKA_PREDICTIONS_BUCKET": "d"})


def test_local_stack_passes_saikika_settings_to_functions(monkeypatch, tmp_path):
    from saikika.tooling.local_stack import LocalStack

    monkeypatch.setenv("SAIKIKA_MODEL_TTL_S", "7")
    monkeypatch.setenv("SAIKIKA_RETRAIN_MIN_INTERVAL_S", "5")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    stack = LocalStack(state_dir=tmp_path, extra_env={"SAIKIKA_RETRAIN_MIN_INTERVAL_S": "9"})
    stack.env = {"SAIKIKA_DATA_BUCKET": "d"}
    env = stack._function_env()
    assert env["SAIKIKA_MODEL_TTL_S"] == "7"
    assert env["SAIKIKA_RETRAIN_MIN_INTERVAL_S"] == "9"  # the stack's own choice wins over the environment
    assert env["SAIKIKA_DATA_BUCKET"] == "d"
    assert "UNRELATED_SECRET" not in env


def test_require_holdout_is_a_strict_flag():
    assert Settings.from_env(BASE).promotion_require_holdout is False
    assert Settings.from_env({**BASE, "SAIKIKA_PROMOTION_REQUIRE_HOLDOUT": "true"}).promotion_require_holdout is True
    with pytest.raises(ConfigError, match="must be true or false"):
        Settings.from_env({**BASE, "SAIKIKA_PROMOTION_REQUIRE_HOLDOUT": "yes"})


def test_word_vectors_name_an_object_under_their_prefix_with_its_checksum():
    digest = "ab" * 32
    settings = Settings.from_env(
        {**BASE, "SAIKIKA_WORD_VECTORS": "word-vectors/ja.npz", "SAIKIKA_WORD_VECTORS_SHA256": digest.upper()}
    )
    assert (settings.word_vectors, settings.word_vectors_sha256) == ("word-vectors/ja.npz", digest)
    assert Settings.from_env(BASE).word_vectors == ""
    with pytest.raises(ConfigError, match="under word-vectors/"):
        Settings.from_env({**BASE, "SAIKIKA_WORD_VECTORS": "models/ja.npz", "SAIKIKA_WORD_VECTORS_SHA256": digest})
    with pytest.raises(ConfigError, match="needs SAIKIKA_WORD_VECTORS_SHA256"):
        Settings.from_env({**BASE, "SAIKIKA_WORD_VECTORS": "word-vectors/ja.npz"})
