"""A batch run's record, `_RUN.json` in its folder of the predictions bucket: which input, which model version, and
for a run handed to a batch job the launch's state and the job id. One shape for both modes; `write` is its one
writer (a generation precondition, so concurrent deliveries never overwrite each other's record).

Records of the previous release load too: the batch function wrote `generation` and `started_at` and no state, the
launcher wrote `launcher`, `output`, `errors`, `model_folder`, `state` and `requested_at` and no model version.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from saikika.cloud import gcs
from saikika.core import objects


class RunMode(StrEnum):
    FUNCTION = "function"  # predicted inside the batch function
    JOB = "job"  # handed to a batch job


class LaunchState(StrEnum):
    LAUNCHING = "launching"  # recorded before the launch: this delivery launches
    LAUNCHED = "launched"  # the job id is known
    FAILED = "failed"  # the launch raised; a later delivery may try again


@dataclass(frozen=True)
class BatchRun:
    run_id: str
    mode: RunMode
    input: str
    launcher: str | None = None
    # The input object's generation (function runs: `input` names the object; job runs carry it in the run id).
    generation: int | None = None
    output: str | None = None
    errors: str | None = None
    model_folder: str | None = None
    model_version: str | None = None
    inference_sha256: str | None = None
    state: LaunchState | None = None
    requested_at: float | None = None  # epoch seconds: the launch's grace period is measured from it
    started_at: str | None = None
    reason: str | None = None
    job_id: str | None = None
    launched_at: str | None = None

    def with_state(self, state: LaunchState, **changes: Any) -> BatchRun:
        return replace(self, state=state, **changes)

    def to_json(self) -> dict[str, Any]:
        """Every field that is set, as `str` for the enums; unset fields are left out, as both old shapes did."""
        out: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is not None:
                out[spec.name] = str(value) if isinstance(value, StrEnum) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchRun:
        known = {spec.name for spec in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["mode"] = RunMode(values["mode"])
        if values.get("state") is not None:
            values["state"] = LaunchState(values["state"])
        return cls(**values)


def record_name(folder: str) -> str:
    return folder + objects.BATCH_RUN_FILE


def read(bucket: gcs.Bucket, folder: str) -> tuple[BatchRun, int] | None:
    found = gcs.read_json(bucket, record_name(folder))
    return None if found is None else (BatchRun.from_json(found[0]), found[1])


def write(bucket: gcs.Bucket, folder: str, run: BatchRun, generation: int) -> int | None:
    """Write the record only if it is still at `generation` (0: only if there is none yet); the new generation, or
    None if another delivery wrote first."""
    return gcs.write_if_generation(bucket, record_name(folder), gcs.to_json(run.to_json()), gcs.JSON, generation)


def pin(bucket: gcs.Bucket, folder: str, run: BatchRun) -> BatchRun:
    """The run's record: `run` if this call created it, else the one an earlier delivery wrote (its model stands)."""
    if write(bucket, folder, run, 0) is not None:
        return run
    found = read(bucket, folder)
    return run if found is None else found[0]
