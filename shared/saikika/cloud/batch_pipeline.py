"""Batch prediction on Apache Beam: the DirectRunner locally, Dataflow in the cloud (same pipeline).

Items (the item contract, one per JSONL line) are read from files matching a pattern, predicted with
`RunInference` and a model handler of ours that loads the version's inference artifact with its checksums
verified (`allow_pickle=False`; Beam's own scikit-learn handler loads pickle and is never used), and written
as sharded JSONL, `OUTPUT/part-SSSSS-of-NNNNN.jsonl`, one line per item in the event path's record shape
(`saikika.core.records`) plus the run id. Lines that are not JSON or not a valid item go to
`ERRORS/part-…jsonl` (default `OUTPUT/errors/`) with their file and line number; they never stop the job.
`OUTPUT/_SUCCESS` is written last, with the counts, model version and input spec.

Shards are written by a step of ours, not `WriteToText`: each shard is one group (items keyed by a hash of
their id), written whole under its final name. A retried bundle rewrites the same file instead of leaving a
temporary one, and nothing is renamed (Beam's renames use the JSON batch API, which fake-gcs-server lacks).

`python -m saikika.cloud.batch_pipeline` is the one entry point: `saikika batch`, the local launcher and the
Dataflow Flex Template all run it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from saikika.core import jsonl, logs, records
from saikika.core.drift import DEFAULT_BOUND, DEFAULT_MIN_ITEMS, LabelCounts, batch_run_drift
from saikika.core.items import Item, ItemError, parse_line
from saikika.core.objects import (
    BATCH_SUCCESS_FILE,
    INFERENCE_FILE,
    METADATA_FILE,
    PIPELINE_ERRORS_FOLDER,
    batch_part,
)
from saikika.model import artifact
from saikika.model.explain import explain
from saikika.model.label_model import LabelModel

NAMESPACE = "saikika.batch"
log = logging.getLogger("saikika.batch")

SUCCESS_FILE = BATCH_SUCCESS_FILE
# About one output shard per this many input bytes (a shard's lines are smaller than its items).
INPUT_BYTES_PER_SHARD = 64 * 1024 * 1024
MAX_BATCH_SIZE = 100
LABEL_COUNTER = "label:"
NO_LABEL_COUNTER = "no-label"


# Told of each line read ("read", "rejected") and each item predicted ("predicted"), in this process: a command
# line watching a DirectRunner run, whose steps run in its own process by default. Beam's counters are read only
# when the run ends; on Dataflow (or a multi-process DirectRunner) the steps run elsewhere and nothing is told.
_LISTENERS: list[Callable[[str], None]] = []


def _tell(event: str) -> None:
    for listener in _LISTENERS:
        listener(event)


def _read(path: str) -> bytes:
    with FileSystems.open(path) as handle:
        return handle.read()


class InferenceArtifactHandler(ModelHandler[Item, PredictionResult, LabelModel]):
    """Loads a version's model.npz from its folder (local or gs://) the way predictors do: metadata.json names
    its sha256, `expected_sha256` (the champion pointer's, when known) must match too."""

    def __init__(
        self,
        version_folder: str,
        expected_sha256: str | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
        explain_k: int = 0,
    ):
        self._folder = version_folder.rstrip("/")
        self._expected_sha256 = expected_sha256
        self._max_batch_size = max_batch_size
        self._explain_k = explain_k  # > 0: each prediction carries its labels' explanations (saikika.model.explain)

    def load_model(self) -> LabelModel:
        metadata = json.loads(_read(f"{self._folder}/{METADATA_FILE}"))
        arrays = _read(f"{self._folder}/{INFERENCE_FILE}")
        return artifact.load_inference(arrays, metadata, expected_sha256=self._expected_sha256)

    def run_inference(
        self,
        batch: Sequence[Item],
        model: LabelModel,
        inference_args=None,  # noqa: ARG002  (Beam's signature)
    ) -> Iterable[PredictionResult]:
        predictions = model.predict(list(batch))
        if self._explain_k:
            predictions = [
                Explained(p.labels, p.scores, [e.to_json() for e in explain(model, item, self._explain_k, p.labels)])
                for item, p in zip(batch, predictions)
            ]
        return [
            PredictionResult(item, prediction, model_id=model.version) for item, prediction in zip(batch, predictions)
        ]

    def batch_elements_kwargs(self) -> dict:
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}


class _ParseLines(beam.DoFn):
    """A matched file's lines → (id, item), or an error record with the file and line number."""

    ERRORS = "errors"

    def __init__(self):
        self._read = Metrics.counter(NAMESPACE, "read")
        self._rejected = Metrics.counter(NAMESPACE, "rejected")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        with readable.open() as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    item = parse_line(raw)
                except ItemError as exc:
                    self._read.inc()
                    self._rejected.inc()
                    _tell("read")
                    _tell("rejected")
                    yield beam.pvalue.TaggedOutput(self.ERRORS, {"file": path, "line": number, "error": str(exc)})
                    continue
                if item is not None:
                    self._read.inc()
                    _tell("read")
                    yield item.id, item


class Explained(NamedTuple):
    """A prediction with its labels' explanations (`--explain K`), in predict_http's shape."""

    labels: list[str]
    scores: dict[str, float]
    explanations: list[dict]


def _record(keyed: tuple[str, PredictionResult], run_id: str, predicted_at: str) -> str:
    item_id, result = keyed
    Metrics.counter(NAMESPACE, "predicted").inc()
    # The run's label counts, kept as counters (no extra pass over the predictions): `_SUCCESS` and label drift.
    for label in result.inference.labels:
        Metrics.counter(NAMESPACE, LABEL_COUNTER + label).inc()
    if not result.inference.labels:
        Metrics.counter(NAMESPACE, NO_LABEL_COUNTER).inc()
    _tell("predicted")
    extra = {"explanations": result.inference.explanations} if isinstance(result.inference, Explained) else {}
    return json.dumps(
        records.prediction(
            item_id, result.inference.labels, result.inference.scores, result.model_id, predicted_at, run_id=run_id
        )
        | extra,
        ensure_ascii=False,
    )


class _WriteShard(beam.DoFn):
    """(shard, lines) → `folder/part-SSSSS-of-NNNNN.jsonl`, written whole (an empty shard is an empty file)."""

    def __init__(self, folder: str, shards: int):
        self._folder = folder
        self._shards = shards

    def process(self, grouped: tuple[int, Iterable[str | None]]):
        shard, lines = grouped
        with FileSystems.create(
            f"{self._folder}/{batch_part(shard, self._shards)}", mime_type=jsonl.CONTENT_TYPE
        ) as handle:
            for line in lines:
                if line is not None:
                    handle.write(line.encode("utf-8") + b"\n")
        yield shard


def _write_shards(
    lines: beam.PCollection, folder: str, shards: int, label: str, *, every_shard: bool = True
) -> beam.PCollection:
    """`every_shard`: each part file exists even when its group is empty (None lines stand for every shard index),
    so a run's predictions are always its N parts; otherwise a part is written only if it has lines."""
    keyed = lines | f"{label}Key" >> beam.Map(lambda line: (zlib.crc32(line.encode("utf-8")) % shards, line))
    parts = [keyed]
    if every_shard:
        parts.append(lines.pipeline | f"{label}Shards" >> beam.Create([(shard, None) for shard in range(shards)]))
    return (
        tuple(parts)
        | f"{label}Flatten" >> beam.Flatten()
        | f"{label}Group" >> beam.GroupByKey()
        | f"{label}Write" >> beam.ParDo(_WriteShard(folder, shards))
    )


def matched_sizes(input_pattern: str) -> list[int]:
    """The size of each file the pattern matches (none: an empty list)."""
    return [m.size_in_bytes for result in FileSystems.match([input_pattern]) for m in result.metadata_list]


def shard_count(input_pattern: str) -> int:
    return max(1, math.ceil(sum(matched_sizes(input_pattern)) / INPUT_BYTES_PER_SHARD))


@contextmanager
def _told(progress: Callable[[str], None] | None) -> Iterator[None]:
    """`progress` hears of each line and item while the pipeline runs in this process."""
    _LISTENERS.extend([progress] if progress else [])
    try:
        yield
    finally:
        if progress:
            _LISTENERS.remove(progress)


def run(
    input_pattern: str,
    output: str,
    version_folder: str,
    *,
    expected_sha256: str | None = None,
    errors: str | None = None,
    pipeline_args: Sequence[str] = (),
    run_id: str | None = None,
    shards: int | None = None,
    explain_k: int = 0,
    progress: Callable[[str], None] | None = None,
    drift_output: str | None = None,
    drift_bound: float = DEFAULT_BOUND,
    drift_min_items: int = DEFAULT_MIN_ITEMS,
) -> dict[str, Any]:
    """Run the pipeline to the end and write `_SUCCESS`; returns what `_SUCCESS` holds. `explain_k` > 0: each
    line also holds, for each predicted label, its K strongest substrings (`explanations`). `progress` is told
    "read", "rejected" or "predicted" for each line or item, as it happens, where the steps run in this process.
    `drift_output`: where the run's label drift goes (after `_SUCCESS`), against the model version's baseline."""
    run_id = run_id or uuid.uuid4().hex[:12]
    output = output.rstrip("/")
    errors = (errors or f"{output}/{PIPELINE_ERRORS_FOLDER}").rstrip("/")
    shards = shards or shard_count(input_pattern)
    predicted_at = datetime.now(UTC).isoformat()
    handler = KeyedModelHandler(InferenceArtifactHandler(version_folder, expected_sha256, explain_k=explain_k))
    with _told(progress):
        with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as pipeline:
            _predict_into(pipeline, input_pattern, handler, output, errors, shards, run_id, predicted_at)
    result = pipeline.result
    counts = {name: _counter(result, name) for name in ("read", "predicted", "rejected")}
    metadata = json.loads(_read(f"{version_folder.rstrip('/')}/{METADATA_FILE}"))
    labels = _label_counts(result, counts["predicted"])
    success = {
        "run_id": run_id,
        "input": input_pattern,
        "output": output,
        "errors": errors,
        "model_version": metadata["version"],
        "predicted_at": predicted_at,
        "shards": shards,
        **counts,
        "label_counts": labels.to_json(),
    }
    # Written last: its presence says every part above is complete.
    with FileSystems.create(f"{output}/{SUCCESS_FILE}", mime_type="application/json") as handle:
        handle.write((json.dumps(success, indent=2) + "\n").encode())
    if drift_output:
        _write_drift(drift_output, labels, metadata, run_id, shards, drift_bound, drift_min_items)
    return success


def _label_counts(result, predicted: int) -> LabelCounts:
    """The run's label counts from its committed counters (a retried bundle is not counted twice)."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    counts = LabelCounts(items=predicted)
    for counter in found:
        name, value = counter.key.metric.name, int(counter.committed or 0)
        if name.startswith(LABEL_COUNTER):
            label = name[len(LABEL_COUNTER) :]
            counts.labels[label] = counts.labels.get(label, 0) + value
        elif name == NO_LABEL_COUNTER:
            counts.none += value
    return counts


def _write_drift(
    path: str, labels: LabelCounts, metadata: dict, run_id: str, shards: int, bound: float, min_items: int
) -> None:
    """The run's label drift (`saikika.core.drift`) at `path`, and its `label drift` line. Monitoring never fails
    the run: a failure is logged (ERROR) and the predictions stand."""
    try:
        found = batch_run_drift(labels, metadata, run_id, bound, shards, datetime.now(UTC), min_items)
        with FileSystems.create(path, mime_type="application/json") as handle:
            handle.write((json.dumps(found.to_json(), indent=2) + "\n").encode())
    except Exception as exc:  # noqa: BLE001  the run is complete; a monitoring object is not worth failing it
        logs.event(log, logging.ERROR, "label drift not recorded", run_id=run_id, object=path, error=repr(exc))
        return
    level = logging.WARNING if found.above_bound else logging.INFO
    logs.event(log, level, "label drift", **found.log_fields(), objects=shards, object=path)


def _predict_into(
    pipeline: beam.Pipeline,
    input_pattern: str,
    handler: KeyedModelHandler,
    output: str,
    errors: str,
    shards: int,
    run_id: str,
    predicted_at: str,
) -> None:
    """The pipeline's steps: read and parse, predict into `shards` parts, bad lines into one errors part."""
    parsed = (
        pipeline
        | "Match" >> fileio.MatchFiles(input_pattern)
        | "Read" >> fileio.ReadMatches()
        | "Parse" >> beam.ParDo(_ParseLines()).with_outputs(_ParseLines.ERRORS, main="items")
    )
    predicted = parsed.items | "Predict" >> RunInference(handler) | "Format" >> beam.Map(_record, run_id, predicted_at)
    _write_shards(predicted, output, shards, "Predictions")
    bad = parsed[_ParseLines.ERRORS] | "FormatErrors" >> beam.Map(
        lambda error: json.dumps({**error, "run_id": run_id}, ensure_ascii=False)
    )
    _write_shards(bad, errors, 1, "Errors", every_shard=False)  # no rejected line, no errors file


def _counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))["counters"]
    return int(sum(counter.committed or 0 for counter in found))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The entry point every launcher runs; arguments it does not know are Beam pipeline options."""
    parser = argparse.ArgumentParser(prog="python -m saikika.cloud.batch_pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="file pattern of item JSONL files (local or gs://)")
    parser.add_argument("--output", required=True, help="folder for part-*.jsonl and _SUCCESS")
    parser.add_argument("--errors", help="folder for bad lines (default OUTPUT/errors)")
    parser.add_argument("--model_folder", required=True, help="a model version's folder (local or gs://)")
    parser.add_argument("--expected_sha256", help="model.npz's sha256 as the champion pointer names it")
    parser.add_argument("--run_id")
    parser.add_argument("--shards", type=int)
    parser.add_argument("--explain", type=int, default=0, help="add each label's K strongest substrings")
    parser.add_argument("--drift_output", help="where the run's label drift goes (JSON); default: not written")
    parser.add_argument(
        "--drift_bound", type=float, default=DEFAULT_BOUND, help="the drift bound (SAIKIKA_DRIFT_BOUND)"
    )
    parser.add_argument(
        "--drift_min_items",
        type=int,
        default=DEFAULT_MIN_ITEMS,
        help="fewer items are never above the bound (SAIKIKA_DRIFT_MIN_ITEMS)",
    )
    known, beam_args = parser.parse_known_args(argv)
    return run(
        known.input,
        known.output,
        known.model_folder,
        expected_sha256=known.expected_sha256,
        errors=known.errors,
        pipeline_args=beam_args,
        run_id=known.run_id,
        shards=known.shards,
        explain_k=known.explain,
        drift_output=known.drift_output,
        drift_bound=known.drift_bound,
        drift_min_items=known.drift_min_items,
    )


if __name__ == "__main__":
    # Through the module's own name, so that the pipeline's classes pickle as importable names on workers.
    from saikika.cloud import batch_pipeline

    print(json.dumps(batch_pipeline.main()))
