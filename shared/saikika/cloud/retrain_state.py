"""The retrain state's objects in the models bucket: pending markers, retrain/state.json, run records and
trained-digest markers, read and written as `saikika.core.retraining`'s types.

Every write is conditional (`gcs.write_if_generation`): markers and records are create-only (a redelivery
writes nothing new), the state is a compare-and-swap that only the lease holder should ever win.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from saikika.cloud import gcs
from saikika.core import objects
from saikika.core.retraining import (
    JobInFlight,
    Pending,
    PendingMarker,
    RetrainState,
    RetryLater,
    RunRecord,
    TrainedMarker,
)


class RetrainStore:
    def __init__(self, bucket: gcs.Bucket):
        self.bucket = bucket

    # ---- pending work -----------------------------------------------------------------------
    def pending(self) -> list[Pending]:
        """One listing of retrain/pending/ (it grows with new work, not with history)."""
        found = []
        for blob in self.bucket.list_blobs(prefix=objects.RETRAIN_PENDING_PREFIX):
            work = objects.pending_work(blob.name)
            if work is not None:
                found.append(Pending(blob.name, int(blob.generation), work[0], work[1]))
        return found

    def add_object(self, name: str, generation: int, updated: datetime, recorded_at: str) -> bool:
        """The marker of one training object generation; False if it was there already (a redelivery)."""
        marker = PendingMarker.for_object(name, generation, recorded_at)
        return gcs.create_json(self.bucket, objects.retrain_pending(name, generation, updated), marker.to_json())

    def add_request(self, message_id: str, published: datetime, reason: str, recorded_at: str) -> bool:
        """The marker of a forced request: kept as work, so a request waiting on the lease or the interval is not
        lost."""
        marker = PendingMarker.for_request(message_id, reason, recorded_at)
        return gcs.create_json(self.bucket, objects.retrain_request(message_id, published), marker.to_json())

    def consume(self, pending: list[Pending]) -> None:
        """Delete the markers a run was given, each at the generation it was listed with (a rewritten one is new
        work and stays)."""
        for marker in pending:
            gcs.delete_if_generation(self.bucket, marker.name, marker.generation)

    # ---- retrain/state.json ------------------------------------------------------------------
    def state(self) -> tuple[RetrainState, int]:
        """The state and its generation (0: none written yet)."""
        found = gcs.read_json(self.bucket, objects.RETRAIN_STATE_OBJECT)
        return (RetrainState.from_json(found[0]), found[1]) if found else (RetrainState(), 0)

    def write_state(self, state: RetrainState, generation: int) -> int:
        """Replace the state at `generation`; the new generation. Raises RetryLater when it changed meanwhile: only
        the lease holder writes the state, so a changed generation means the lease was lost."""
        written = gcs.write_if_generation(
            self.bucket, objects.RETRAIN_STATE_OBJECT, gcs.to_json(state.to_json()), gcs.JSON, generation
        )
        if written is None:
            raise RetryLater(f"{objects.RETRAIN_STATE_OBJECT} changed under the lease; the run is abandoned")
        return written

    def replace_job(self, run_id: str, job: JobInFlight | None) -> None:
        """Set (or, with None, clear) the job in flight, if it is still run `run_id`; a lost race changes nothing."""
        state, generation = self.state()
        if state.job is not None and state.job.run_id == run_id:
            gcs.write_if_generation(
                self.bucket,
                objects.RETRAIN_STATE_OBJECT,
                gcs.to_json(replace(state, job=job).to_json()),
                gcs.JSON,
                generation,
            )

    # ---- records ----------------------------------------------------------------------------
    def add_run(self, record: RunRecord, started: float) -> bool:
        return gcs.create_json(self.bucket, objects.retrain_run(datetime.fromtimestamp(started, UTC)), record.to_json())

    def trained(self, digest: str) -> tuple[TrainedMarker | None, int]:
        """The marker of a run on this training data and its generation (None, 0: never trained on)."""
        found = gcs.read_json(self.bucket, objects.retrain_trained(digest))
        return (TrainedMarker.from_json(found[0]), found[1]) if found else (None, 0)

    def set_trained(self, marker: TrainedMarker, generation: int) -> None:
        gcs.write_if_generation(
            self.bucket, objects.retrain_trained(marker.digest), gcs.to_json(marker.to_json()), gcs.JSON, generation
        )
