"""The training job's launcher: the Cloud Run Admin API request it sends, and the settings it needs."""

from __future__ import annotations

import pytest

from saikika.cloud import launchers
from saikika.core.errors import ConfigError
from saikika.core.settings import Settings

ENV = {"GOOGLE_CLOUD_PROJECT": "p", "SAIKIKA_DATA_BUCKET": "d", "SAIKIKA_MODELS_BUCKET": "m",
       "SAIKIKA_PREDICTIONS_BUCKET": "o"}


def test_the_training_job_is_run_with_the_runs_arguments_as_overrides():
    with pytest.raises(ConfigError, match="SAIKIKA_TRAINING_JOB"):
        launchers.training_from_settings(Settings.from_env(ENV))
    assert isinstance(launchers.training_from_settings(Settings.from_env({**ENV, "SAIKIKA_TRAINING_LAUNCHER": "local"})),
                      launchers.LocalProcess)
    launcher = launchers.training_from_settings(Settings.from_env(
        {**ENV, "SAIKIKA_TRAINING_JOB": "projects/p/locations/asia-northeast1/jobs/saikika-training"}))
    job = launchers.TrainingJob("abc123", "retrain-requests message 7: tick", force=True)
    assert launcher.url() == "https://run.googleapis.com/v2/projects/p/locations/asia-northeast1/jobs/saikika-training:run"
    assert launcher.request(job) == {"overrides": {"containerOverrides": [{"args": [
        "--run-id=abc123", "--trigger=retrain-requests message 7: tick", "--force"]}], "taskCount": 1}}
    # The entry point the job runs parses exactly these arguments.
    from saikika.handlers import training_job

    assert job.entry_module == launchers.TRAINING_ENTRY_MODULE == training_job.__name__
    args = training_job.parser().parse_args(job.arguments())
    assert (args.run_id, args.trigger, args.force) == ("abc123", "retrain-requests message 7: tick", True)
