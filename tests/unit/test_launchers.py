"""The job launchers (Dataflow for batch, Cloud Run for training): the API requests they send, and the settings
they need."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from saikika.cloud import launchers
from saikika.core.errors import ConfigError
from saikika.core.settings import Settings

ENV = {
    "GOOGLE_CLOUD_PROJECT": "p",
    "SAIKIKA_DATA_BUCKET": "d",
    "SAIKIKA_MODELS_BUCKET": "m",
    "SAIKIKA_PREDICTIONS_BUCKET": "o",
}


def test_the_training_job_is_run_with_the_runs_arguments_as_overrides():
    with pytest.raises(ConfigError, match="SAIKIKA_TRAINING_JOB"):
        launchers.training_from_settings(Settings.from_env(ENV))
    assert isinstance(
        launchers.training_from_settings(Settings.from_env({**ENV, "SAIKIKA_TRAINING_LAUNCHER": "local"})),
        launchers.LocalProcess,
    )
    launcher = launchers.training_from_settings(
        Settings.from_env({**ENV, "SAIKIKA_TRAINING_JOB": "projects/p/locations/asia-northeast1/jobs/saikika-training"})
    )
    job = launchers.TrainingJob("abc123", "retrain-requests message 7: tick", force=True)
    assert (
        launcher.url() == "https://run.googleapis.com/v2/projects/p/locations/asia-northeast1/jobs/saikika-training:run"
    )
    assert launcher.request(job) == {
        "overrides": {
            "containerOverrides": [
                {"args": ["--run-id=abc123", "--trigger=retrain-requests message 7: tick", "--force"]}
            ],
            "taskCount": 1,
        }
    }
    # The entry point the job runs parses exactly these arguments.
    from saikika.handlers import training_job

    assert job.entry_module == launchers.TRAINING_ENTRY_MODULE == training_job.__name__
    args = training_job.parser().parse_args(job.arguments())
    assert (args.run_id, args.trigger, args.force) == ("abc123", "retrain-requests message 7: tick", True)


def test_the_dataflow_launcher_needs_its_settings_and_builds_a_flex_template_launch():
    with pytest.raises(ConfigError, match="SAIKIKA_DATAFLOW_TEMPLATE"):
        launchers.from_settings(Settings.from_env(ENV))
    assert isinstance(
        launchers.from_settings(Settings.from_env({**ENV, "SAIKIKA_BATCH_LAUNCHER": "local"})), launchers.LocalProcess
    )
    with pytest.raises(ConfigError, match="SAIKIKA_BATCH_LAUNCHER"):
        Settings.from_env({**ENV, "SAIKIKA_BATCH_LAUNCHER": "cloud-run"})
    launcher = launchers.from_settings(
        Settings.from_env(
            {
                **ENV,
                "SAIKIKA_DATAFLOW_REGION": "asia-northeast1",
                "SAIKIKA_DATAFLOW_TEMPLATE": "gs://t/templates/b.json",
                "SAIKIKA_DATAFLOW_SERVICE_ACCOUNT": "w@p.iam.gserviceaccount.com",
                "SAIKIKA_DATAFLOW_TEMP_LOCATION": "gs://t/temp",
                "SAIKIKA_DATAFLOW_MAX_WORKERS": "4",
                "SAIKIKA_DATAFLOW_IMAGE": "asia-docker.pkg.dev/p/r/saikika-batch:1",
            }
        )
    )
    job = launchers.BatchJob(
        "Shop_A-g17644",
        "gs://d/batch/input/a.jsonl",
        "gs://o/batch/dt=2026-11-29/run=x/",
        "gs://o/rejected/batch/dt=2026-11-29/run=x/",
        "gs://m/models/v1/",
        "ab" * 32,
    )
    request = launcher.request(job)["launchParameter"]
    assert launcher.url() == (
        "https://dataflow.googleapis.com/v1b3/projects/p/locations/asia-northeast1/flexTemplates:launch"
    )
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", request["jobName"]), request["jobName"]
    assert request["containerSpecGcsPath"] == "gs://t/templates/b.json"
    # The template's parameters are the entry point's own arguments (dataflow/metadata.json declares them).
    assert request["parameters"] == {
        "input": job.input,
        "output": job.output,
        "errors": job.errors,
        "model_folder": job.model_folder,
        "run_id": job.run_id,
        "expected_sha256": job.expected_sha256,
        "sdk_container_image": "asia-docker.pkg.dev/p/r/saikika-batch:1",
    }
    assert request["environment"] == {
        "serviceAccountEmail": "w@p.iam.gserviceaccount.com",
        "tempLocation": "gs://t/temp",
        "maxWorkers": 4,
        "machineType": "n2-standard-2",
    }
    metadata = json.loads((Path(__file__).resolve().parents[2] / "dataflow" / "metadata.json").read_text())
    declared = {p["name"] for p in metadata["parameters"]}
    assert set(request["parameters"]) - {"sdk_container_image"} <= declared
