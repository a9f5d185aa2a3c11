"""A JSONL file under batch/input/ in the data bucket becomes a batch run in the predictions bucket.

Small files (up to SAIKIKA_BATCH_FUNCTION_MAX_BYTES) are predicted here, streamed: the file is read in chunks
and cut into parts by byte range (a line belongs to the part its first byte falls in), so memory holds one
part, and the layout is known before the first line is read: `part-SSSSS-of-NNNNN.jsonl`, N = ⌈size / part
size⌉. Each part is written create-only, its bad lines first (`rejected/batch/…`), its predictions last, so an
existing predictions part means the whole part is done: a redelivered event (or a delivery after a crash
mid-file) skips finished parts, redoes the unfinished one, and every line appears exactly once. The run's
`_RUN.json` pins the model version for all parts; `_SUCCESS` comes last, with the counts.

Larger files are handed to a batch job (Dataflow, or a local DirectRunner process) once per object
generation, through `saikika.cloud.launchers`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from saikika.cloud import batch_runs, drift, gcs, launchers, registry
from saikika.cloud.batch_runs import BatchRun, RunMode
from saikika.cloud.champion_cache import ChampionCache, load_version
from saikika.core import jsonl, logs, objects, records
from saikika.core.drift import LabelCounts
from saikika.core.errors import ConfigError, NoChampionError
from saikika.core.events import ObjectEvent
from saikika.core.items import ItemError, parse_line
from saikika.core.settings import Settings
from saikika.model.label_model import LabelModel

log = logging.getLogger("saikika.batch")

READ_CHUNK_BYTES = 1024 * 1024
PREDICT_BATCH = 500
COUNTS = ("read", "predicted", "rejected")


class BatchStatus(StrEnum):
    PREDICTED = "predicted"
    ALREADY_DONE = "already-done"
    HANDED_OFF = "handed-off"
    REFUSED = "refused"
    IGNORED = "ignored"


@dataclass(frozen=True)
class BatchOutcome:
    status: BatchStatus
    run_id: str | None = None
    folder: str | None = None
    counts: dict | None = None
    job_id: str | None = None


@dataclass(frozen=True)
class _Run:
    """One run of one input object generation, and where its files go."""

    blob: gcs.Blob
    run_id: str
    folder: str
    errors: str

    @property
    def source(self) -> str:
        return f"gs://{self.blob.bucket.name}/{self.blob.name}"

    def pinned_to(self, champion: registry.Champion) -> BatchRun:
        """The run's record, pinned to `champion`'s version."""
        return BatchRun(
            run_id=self.run_id,
            mode=RunMode.FUNCTION,
            input=self.source,
            generation=int(self.blob.generation),
            model_version=champion.version,
            inference_sha256=champion.inference_sha256,
            started_at=datetime.now(UTC).isoformat(),
        )

    def success(self, predictions_bucket: str, model_version: str, parts: int, totals: dict[str, int]) -> dict:
        """`_SUCCESS`: the run's counts, written last."""
        return {
            "run_id": self.run_id,
            "input": f"{self.source}#{self.blob.generation}",
            "output": f"gs://{predictions_bucket}/{self.folder}",
            "errors": f"gs://{predictions_bucket}/{self.errors}",
            "model_version": model_version,
            "mode": str(RunMode.FUNCTION),
            "shards": parts,
            **totals,
            "completed_at": datetime.now(UTC).isoformat(),
        }


@dataclass
class _Part:
    index: int
    first_line: int
    lines: list[bytes]


def parts_of(chunks: Iterator[bytes], part_bytes: int, count: int) -> Iterator[_Part]:
    """Cut a byte stream into `count` parts by the offset of each line's first byte; every part is yielded,
    in order, empty ones too. Pure: what both the function and its tests rely on."""
    part = _Part(0, 1, [])
    offset, line_number, carry = 0, 1, b""
    for chunk in chunks:
        data = carry + chunk
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            owner = min(count - 1, (offset + start) // part_bytes)
            while part.index < owner:
                yield part
                part = _Part(part.index + 1, line_number, [])
            part.lines.append(data[start:end])
            line_number += 1
            start = end + 1
        offset += start
        carry = data[start:]
    if carry:
        owner = min(count - 1, offset // part_bytes)
        while part.index < owner:
            yield part
            part = _Part(part.index + 1, line_number, [])
        part.lines.append(carry)
    while True:
        yield part
        if part.index >= count - 1:
            return
        part = _Part(part.index + 1, line_number, [])


class BatchScorer:
    """One per function instance: the storage client, the champion cache and the launcher."""

    def __init__(
        self, settings: Settings, client: gcs.Client | None = None, launcher: launchers.Launcher | None = None
    ):
        self.settings = settings
        self._client = client or gcs.client(settings.project)
        self.data_bucket = self._client.bucket(settings.data_bucket)
        self.models_bucket = self._client.bucket(settings.models_bucket)
        self.predictions_bucket = self._client.bucket(settings.predictions_bucket)
        self.models = ChampionCache(self.models_bucket, settings.model_ttl_s)
        self._launcher = launcher

    def on_object(self, event: ObjectEvent) -> BatchOutcome:
        if (
            event.bucket != self.settings.data_bucket
            or not objects.is_batch_input(event.name)
            or event.event_type != "OBJECT_FINALIZE"
        ):
            logs.event(log, logging.DEBUG, "event ignored: not a batch input", bucket=event.bucket, object=event.name)
            return BatchOutcome(BatchStatus.IGNORED)
        blob = self.data_bucket.get_blob(event.name, generation=event.generation)
        if blob is None:
            logs.event(
                log,
                logging.WARNING,
                "batch input is gone; nothing to predict",
                object=event.name,
                generation=event.generation,
            )
            return BatchOutcome(BatchStatus.IGNORED)
        run_id = objects.batch_run_id(event.name, int(blob.generation))
        run = _Run(
            blob,
            run_id,
            objects.batch_run_folder(blob.time_created, run_id),
            objects.batch_errors_folder(blob.time_created, run_id),
        )
        if gcs.generation(self.predictions_bucket, run.folder + objects.BATCH_SUCCESS_FILE) is not None:
            logs.event(log, logging.INFO, "batch run already complete", run_id=run_id, object=event.name)
            return BatchOutcome(BatchStatus.ALREADY_DONE, run_id, run.folder)
        if blob.size > self.settings.batch_function_max_bytes:
            return self._hand_off(run)
        return self._predict_here(run)

    # ---- in the function ------------------------------------------------------------------------
    def _predict_here(self, run: _Run) -> BatchOutcome:
        started = time.perf_counter()
        model = self._pinned_model(run)
        count = max(1, math.ceil(run.blob.size / self.settings.batch_part_bytes))
        totals, written, labels = self._score_parts(run, model, count)
        gcs.create_json(
            self.predictions_bucket,
            run.folder + objects.BATCH_SUCCESS_FILE,
            run.success(self.predictions_bucket.name, model.version, count, totals),
        )
        drift.record_batch_run(self.models_bucket, run.run_id, labels, model.version, self.settings, count)
        logs.event(
            log,
            logging.WARNING if totals["rejected"] else logging.INFO,
            "batch file predicted",
            run_id=run.run_id,
            object=run.blob.name,
            generation=run.blob.generation,
            model_version=model.version,
            parts=count,
            parts_written=written,
            parts_skipped=count - written,
            **totals,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return BatchOutcome(BatchStatus.PREDICTED, run.run_id, run.folder, totals)

    def _score_parts(self, run: _Run, model: LabelModel, count: int) -> tuple[dict[str, int], int, LabelCounts]:
        """Every part in order: a finished one (its predictions part exists) is counted from its metadata, the
        others are predicted and written. The totals, how many parts this call wrote, and the run's label counts."""
        done = {
            b.name: dict(b.metadata or {})
            for b in self._client.list_blobs(self.predictions_bucket, prefix=run.folder + objects.BATCH_PART_PREFIX)
        }
        totals, written, labels = dict.fromkeys(COUNTS, 0), 0, LabelCounts()
        with run.blob.open("rb", chunk_size=READ_CHUNK_BYTES) as reader:
            chunks = iter(lambda: reader.read(READ_CHUNK_BYTES), b"")
            for part in parts_of(chunks, self.settings.batch_part_bytes, count):
                name = objects.batch_part(part.index, count)
                finished = done.get(run.folder + name)
                if finished is None:
                    written += 1
                    counts, part_labels = _write_part(self.predictions_bucket, run, part, name, model)
                else:
                    counts, part_labels = _finished_part(finished)
                labels.merge(part_labels)
                totals = {key: totals[key] + counts[key] for key in COUNTS}
        return totals, written, labels

    def _pinned_model(self, run: _Run) -> LabelModel:
        """Every part of a run is predicted by one version: the champion when the run started, recorded in
        _RUN.json, so a delivery after a promotion finishes the run with the version it began with."""
        champion = registry.read_champion(self.models_bucket)
        if champion is None:
            raise NoChampionError("no champion model has been promoted yet")  # transient: redelivered
        record = batch_runs.pin(self.predictions_bucket, run.folder, run.pinned_to(champion))
        model = self.models.get()
        if model.version == record.model_version:
            return model
        return load_version(self.models_bucket, record.model_version, record.inference_sha256)

    # ---- handed to a batch job --------------------------------------------------------------------
    def _hand_off(self, run: _Run) -> BatchOutcome:
        blob, run_id, folder = run.blob, run.run_id, run.folder
        champion = registry.read_champion(self.models_bucket)
        if champion is None:
            raise NoChampionError("no champion model has been promoted yet")
        try:
            launched = launchers.launch_batch_run(
                self.predictions_bucket,
                self.models_bucket,
                blob.time_created,
                run_id,
                run.source,
                champion.version,
                champion.inference_sha256,
                self._launcher or launchers.from_settings(self.settings),
                self.settings,
            )
        except ConfigError as exc:
            # Not transient: retrying cannot fix a missing setting. Recorded in _RUN.json and logged; the
            # file is predicted once the setting is fixed and the file uploaded again.
            logs.event(
                log,
                logging.ERROR,
                "batch file too large for the function and no job engine configured",
                run_id=run_id,
                object=blob.name,
                size=blob.size,
                error=str(exc),
            )
            return BatchOutcome(BatchStatus.REFUSED, run_id, folder)
        logs.event(
            log,
            logging.INFO,
            "batch file handed to a batch job",
            run_id=run_id,
            object=blob.name,
            size=blob.size,
            job_id=launched.job_id,
            duplicate=launched.duplicate,
        )
        return BatchOutcome(BatchStatus.HANDED_OFF, run_id, folder, job_id=launched.job_id)


def _finished_part(metadata: dict[str, str]) -> tuple[dict[str, int], LabelCounts]:
    """A finished part's counts and label counts, from its metadata (no label counts on a part written before they
    were kept)."""
    counts = {key: int(metadata.get(key, 0)) for key in COUNTS}
    return counts, LabelCounts.of_object(metadata) or LabelCounts()


def _write_part(
    bucket: gcs.Bucket, run: _Run, part: _Part, name: str, model: LabelModel
) -> tuple[dict[str, int], LabelCounts]:
    """Predict one part and write it: its bad lines first (`rejected/batch/…`), its predictions last."""
    items, bad = [], []
    for number, raw in enumerate(part.lines, start=part.first_line):
        try:
            item = parse_line(raw)
        except ItemError as exc:
            bad.append({"file": run.source, "line": number, "error": str(exc), "run_id": run.run_id})
            continue
        if item is not None:
            items.append(item)
    predicted_at = datetime.now(UTC).isoformat()
    lines = []
    for start in range(0, len(items), PREDICT_BATCH):
        batch = items[start : start + PREDICT_BATCH]
        lines += [
            records.prediction(item.id, p.labels, p.scores, model.version, predicted_at, run_id=run.run_id)
            for item, p in zip(batch, model.predict(batch))
        ]
    counts = {"read": len(items) + len(bad), "predicted": len(lines), "rejected": len(bad)}
    labels = LabelCounts.of(line["labels"] for line in lines)
    if bad:
        gcs.create_only(bucket, run.errors + name, jsonl.dumps(bad), jsonl.CONTENT_TYPE)
    # Last: its existence marks the part done (errors included). Its metadata keeps the counts, so a later
    # delivery sums finished parts from one listing of this run's folder. If another delivery finished the
    # part first, the create-only write keeps its lines: the same lines.
    gcs.create_only(
        bucket,
        run.folder + name,
        jsonl.dumps(lines),
        jsonl.CONTENT_TYPE,
        metadata={key: str(value) for key, value in counts.items()} | labels.object_metadata(),
    )
    return counts, labels
