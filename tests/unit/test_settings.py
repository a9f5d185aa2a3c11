import pytest

from saikika.core.errors import ConfigError
from saikika.core.settings import REQUIRED_ENV, Settings

BASE = {
    "GOOGLE_CLOUD_PROJECT": "p",
    "SAIKIKA_DATA_BUCKET": "d",
    "SAIKIKA_MODELS_BUCKET": "m",
    "SAIKIKA_PREDICTIONS_BUCKET": "x",
}


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
