"""Work that outgrows one function, handed to an engine Google Cloud runs: one small interface (`Launcher`:
start a job, return its id, never wait), one cloud implementation per kind of job, and one local one.

- Batch prediction: `DataflowFlexTemplate` launches the Flex Template built from this repo (README, Deploy)
  through Dataflow's REST API (`projects.locations.flexTemplates.launch`).
- Training: `CloudRunJob` runs the training job (a Cloud Run job from this repo's image) through the Cloud Run
  Admin API (`projects.locations.jobs.run`) with the run's arguments as overrides.
- `LocalProcess` runs a job's own entry point (`python -m <module> <arguments>`) as a process of its own; the local
  stack uses it, so each hand-off is exercised end to end on the emulators.

Both cloud launchers call the REST API with the function's own credentials (google-auth, already a dependency).

`launch_once` makes a launch happen once per run: the run's `_RUN.json` is created before the launch (a
create-only write decides who launches) and records the job id after it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from saikika.cloud import batch_runs, gcs
from saikika.cloud.batch_runs import BatchRun, LaunchState, RunMode
from saikika.core import logs, objects
from saikika.core.errors import ConfigError, TransientError
from saikika.core.settings import MonitoringSettings, Settings

log = logging.getLogger("saikika.batch")

ENTRY_MODULE = "saikika.cloud.batch_pipeline"
TRAINING_ENTRY_MODULE = "saikika.handlers.training_job"
# A record left in state "launching" this long means its launcher died between the record and the job id:
# another delivery may launch again (Dataflow job names are unique among running jobs, and shards are written
# whole under fixed names, so a second job overwrites the same files rather than adding lines).
LAUNCH_GRACE_S = 300.0


@dataclass(frozen=True)
class BatchJob:
    run_id: str
    input: str  # a file pattern (gs:// or local)
    output: str
    errors: str
    model_folder: str
    expected_sha256: str | None = None
    model_version: str | None = None  # recorded in _RUN.json; the job itself reads `model_folder`
    drift_output: str | None = None  # where the run's label drift goes (saikika.core.drift)
    drift_bound: float | None = None
    drift_min_items: int | None = None
    entry_module = ENTRY_MODULE
    # Run as a local process, the pipeline needs a runner: Beam's DirectRunner, one worker.
    local_arguments = ("--runner=DirectRunner", "--direct_num_workers=1")

    def arguments(self) -> list[str]:
        """The entry point's own arguments (the Flex Template's parameters have the same names)."""
        args = {
            "input": self.input,
            "output": self.output,
            "errors": self.errors,
            "model_folder": self.model_folder,
            "run_id": self.run_id,
        }
        if self.expected_sha256:
            args["expected_sha256"] = self.expected_sha256
        if self.drift_output:
            args["drift_output"] = self.drift_output
        if self.drift_bound is not None:
            args["drift_bound"] = f"{self.drift_bound:g}"
        if self.drift_min_items is not None:
            args["drift_min_items"] = str(self.drift_min_items)
        return [f"--{key}={value}" for key, value in args.items()]


@dataclass(frozen=True)
class TrainingJob:
    run_id: str
    trigger: str
    force: bool = False
    entry_module = TRAINING_ENTRY_MODULE
    local_arguments = ()

    def arguments(self) -> list[str]:
        return [f"--run-id={self.run_id}", f"--trigger={self.trigger}", *(["--force"] if self.force else [])]


class Job(Protocol):
    run_id: str
    entry_module: str
    local_arguments: tuple[str, ...]  # what a local process adds to `arguments()`

    def arguments(self) -> list[str]: ...


class Launcher(Protocol):
    name: str

    def launch(self, job: Job) -> str:
        """Start the job and return its id without waiting for it to finish."""


def _post(url: str, body: dict) -> dict:
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    response = AuthorizedSession(credentials).post(url, json=body, timeout=60)
    if response.status_code >= 500 or response.status_code == 429:
        raise LaunchFailed(f"{url} answered {response.status_code}: {response.text[:500]}")
    if response.status_code >= 400:
        raise ConfigError(f"{url} refused the launch ({response.status_code}): {response.text[:500]}")
    return response.json()


class LaunchFailed(TransientError):
    """The job engine did not accept the job; another delivery may try again."""


@dataclass(frozen=True)
class DataflowFlexTemplate:
    project: str
    region: str
    template: str  # gs://…/saikika-batch.json, written by `gcloud dataflow flex-template build`
    service_account: str
    temp_location: str
    max_workers: int = 10
    machine_type: str = "n2-standard-2"
    image: str = ""  # the workers' SDK container: the template's own image, so workers have saikika installed
    name: str = "dataflow"

    def job_name(self, job: BatchJob) -> str:
        # Dataflow: [a-z]([-a-z0-9]{0,61}[a-z0-9])?, unique among running jobs of the project and region.
        base = re.sub(r"[^a-z0-9-]", "-", job.run_id.lower()).strip("-")[:40]
        digest = hashlib.sha256(job.run_id.encode()).hexdigest()[:8]
        return f"saikika-batch-{base}-{digest}".replace("--", "-")

    def request(self, job: BatchJob) -> dict:
        parameters = dict(arg[2:].split("=", 1) for arg in job.arguments())
        if self.image:
            parameters["sdk_container_image"] = self.image
        return {
            "launchParameter": {
                "jobName": self.job_name(job),
                "containerSpecGcsPath": self.template,
                "parameters": parameters,
                "environment": {
                    "serviceAccountEmail": self.service_account,
                    "tempLocation": self.temp_location,
                    "maxWorkers": self.max_workers,
                    "machineType": self.machine_type,
                },
            }
        }

    def url(self) -> str:
        return (
            f"https://dataflow.googleapis.com/v1b3/projects/{self.project}/locations/{self.region}/flexTemplates:launch"
        )

    def launch(self, job: BatchJob) -> str:
        return str(_post(self.url(), self.request(job))["job"]["id"])


@dataclass(frozen=True)
class CloudRunJob:
    """The training job: `projects/P/locations/R/jobs/J` (terraform's google_cloud_run_v2_job)."""

    job: str
    name: str = "cloudrun"

    def request(self, job: TrainingJob) -> dict:
        return {"overrides": {"containerOverrides": [{"args": job.arguments()}], "taskCount": 1}}

    def url(self) -> str:
        return f"https://run.googleapis.com/v2/{self.job}:run"

    def launch(self, job: TrainingJob) -> str:
        # The answer is a long-running operation; its name identifies the execution being started.
        return str(_post(self.url(), self.request(job))["name"])


@dataclass
class LocalProcess:
    """A job's own entry point as a process of its own (it outlives the call, as a Dataflow job or a Cloud Run job
    outlives the function; batch pipelines run on the DirectRunner). Its output goes to this process's stdout and
    stderr."""

    python: str = sys.executable
    name: str = "local"

    def launch(self, job: Job) -> str:
        process = subprocess.Popen(
            [self.python, "-m", job.entry_module, *job.arguments(), *job.local_arguments], start_new_session=True
        )
        # Reap it when it ends, so a long-lived function instance keeps no zombies.
        threading.Thread(target=process.wait, daemon=True).start()
        return f"local-{process.pid}"


def training_from_settings(settings: Settings) -> Launcher:
    if settings.training_launcher == "local":
        return LocalProcess()
    if not settings.training_job:
        raise ConfigError("training jobs run on Cloud Run, but SAIKIKA_TRAINING_JOB is not set")
    return CloudRunJob(settings.training_job)


def from_settings(settings: Settings) -> Launcher:
    if settings.batch_launcher == "local":
        return LocalProcess()
    missing = [
        key
        for key, value in (
            ("SAIKIKA_DATAFLOW_REGION", settings.dataflow_region),
            ("SAIKIKA_DATAFLOW_TEMPLATE", settings.dataflow_template),
            ("SAIKIKA_DATAFLOW_SERVICE_ACCOUNT", settings.dataflow_service_account),
            ("SAIKIKA_DATAFLOW_TEMP_LOCATION", settings.dataflow_temp_location),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"batch jobs run on Dataflow, but {', '.join(missing)} is not set")
    return DataflowFlexTemplate(
        settings.project,
        settings.dataflow_region,
        settings.dataflow_template,
        settings.dataflow_service_account,
        settings.dataflow_temp_location,
        settings.dataflow_max_workers,
        settings.dataflow_machine_type,
        settings.dataflow_image,
    )


@dataclass(frozen=True)
class Launched:
    job_id: str | None
    duplicate: bool  # launched by an earlier delivery
    record: BatchRun


def launch_batch_run(
    predictions: gcs.Bucket,
    models: gcs.Bucket,
    day: datetime,
    run_id: str,
    input: str,
    champion_version: str,
    expected_sha256: str | None,
    launcher: Launcher,
    monitoring: MonitoringSettings | None = None,
) -> Launched:
    """A batch job over `input` with a model version, into the predictions bucket's run layout
    (`batch/dt=DAY/run=RUN/`, bad lines under `rejected/batch/…`), launched once per run; its label drift goes to
    `monitoring/drift/batch/<run id>.json` in the models bucket."""
    folder = objects.batch_run_folder(day, run_id)
    job = BatchJob(
        run_id=run_id,
        input=input,
        output=f"gs://{predictions.name}/{folder}",
        errors=f"gs://{predictions.name}/{objects.batch_errors_folder(day, run_id)}",
        model_folder=f"gs://{models.name}/{objects.version_prefix(champion_version)}",
        expected_sha256=expected_sha256,
        model_version=champion_version,
        drift_output=f"gs://{models.name}/{objects.batch_drift(run_id)}",
        drift_bound=None if monitoring is None else monitoring.drift_bound,
        drift_min_items=None if monitoring is None else monitoring.drift_min_items,
    )
    return launch_once(predictions, folder, job, launcher)


def launch_once(bucket: gcs.Bucket, folder: str, job: BatchJob, launcher: Launcher, clock=time.time) -> Launched:
    """Launch `job` unless the run's record in `folder` says it was launched already; the record keeps the job
    id."""
    record = BatchRun(
        run_id=job.run_id,
        mode=RunMode.JOB,
        launcher=launcher.name,
        input=job.input,
        output=job.output,
        errors=job.errors,
        model_folder=job.model_folder,
        model_version=job.model_version,
        inference_sha256=job.expected_sha256,
        state=LaunchState.LAUNCHING,
        requested_at=clock(),
    )
    claimed = _claim(bucket, folder, record, clock)
    if isinstance(claimed, Launched):
        return claimed
    try:
        job_id = launcher.launch(job)
    except Exception as exc:
        batch_runs.write(bucket, folder, record.with_state(LaunchState.FAILED, reason=str(exc)), claimed)
        logs.event(
            log, logging.ERROR, "batch job launch failed", run_id=job.run_id, launcher=launcher.name, error=str(exc)
        )
        raise
    launched = record.with_state(LaunchState.LAUNCHED, job_id=job_id, launched_at=datetime.now(UTC).isoformat())
    batch_runs.write(bucket, folder, launched, claimed)
    logs.event(
        log,
        logging.INFO,
        "batch job launched",
        run_id=job.run_id,
        launcher=launcher.name,
        job_id=job_id,
        input=job.input,
        output=job.output,
    )
    return Launched(job_id, False, launched)


def _claim(bucket: gcs.Bucket, folder: str, record: BatchRun, clock) -> int | Launched:
    """Write the `launching` record, which decides who launches: its generation if this delivery launches, the
    earlier launch if there was one. LaunchFailed while another delivery is launching."""
    generation = batch_runs.write(bucket, folder, record, 0)
    if generation is not None:
        return generation
    found = batch_runs.read(bucket, folder)
    existing, existing_generation = found if found else (None, 0)
    if existing is not None and existing.state is LaunchState.LAUNCHED:
        return Launched(existing.job_id, True, existing)
    if (
        existing is not None
        and existing.state is LaunchState.LAUNCHING
        and clock() - float(existing.requested_at or 0) < LAUNCH_GRACE_S
    ):
        raise LaunchFailed(f"another delivery is launching {record.run_id}; checking again later")
    # Failed, or its launcher died: take it over (a compare-and-swap, so one taker).
    generation = batch_runs.write(bucket, folder, record, existing_generation)
    if generation is None:
        raise LaunchFailed(f"{batch_runs.record_name(folder)} changed while taking over the launch of {record.run_id}")
    return generation
