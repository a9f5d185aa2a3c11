"""Batch prediction on Apache Beam: the DirectRunner locally, Dataflow in the cloud (same pipeline).

Items (the item contract, one per JSONL line) are read from files matching a pattern, predicted with
`RunInference` and a model handler of ours that loads the version's inference artifact with its checksums
verified (`allow_pickle=False`; Beam's own scikit-learn handler loads pickle and is never used), and written
as sharded JSONL, `OUTPUT/part-SSSSS-of-NNNNN.jsonl`, one line per item in the event path's record shape plus
the run id. Lines that are not JSON or not a valid item go to `OUTPUT/errors/part-…jsonl` with their file and
line number; they never stop the job. `OUTPUT/_SUCCESS` is written last, with the counts, model version and
input spec.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from saikika.core import jsonl
from saikika.core.items import Item, ItemError, parse_item
from saikika.core.objects import INFERENCE_FILE, METADATA_FILE
from saikika.model import artifact
from saikika.model.label_model import LabelModel

NAMESPACE = "saikika.batch"
SUCCESS_FILE = "_SUCCESS"


def _read(path: str) -> bytes:
    with FileSystems.open(path) as handle:
        return handle.read()


class InferenceArtifactHandler(ModelHandler[Item, PredictionResult, LabelModel]):
    """Loads a version's model.npz from its folder (local or gs://) the way predictors do: metadata.json names
    its sha256, `expected_sha256` (the champion pointer's, when known) must match too."""

    def __init__(self, version_folder: str, expected_sha256: str | None = None, max_batch_size: int = 100):
        self._folder = version_folder.rstrip("/")
        self._expected_sha256 = expected_sha256
        self._max_batch_size = max_batch_size

    def load_model(self) -> LabelModel:
        metadata = json.loads(_read(f"{self._folder}/{METADATA_FILE}"))
        arrays = _read(f"{self._folder}/{INFERENCE_FILE}")
        return artifact.load_inference(arrays, metadata, expected_sha256=self._expected_sha256)

    def run_inference(self, batch: Sequence[Item], model: LabelModel, inference_args=None) -> Iterable[PredictionResult]:
        return [PredictionResult(item, prediction, model_id=model.version)
                for item, prediction in zip(batch, model.predict(list(batch)))]

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
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                self._read.inc()
                try:
                    item = parse_item(jsonl.loads(line))
                except (jsonl.NotJson, ItemError) as exc:
                    self._rejected.inc()
                    yield beam.pvalue.TaggedOutput(self.ERRORS, {"file": path, "line": number, "error": str(exc)})
                    continue
                yield item.id, item


def _record(keyed: tuple[str, PredictionResult], run_id: str, predicted_at: str) -> str:
    item_id, result = keyed
    Metrics.counter(NAMESPACE, "predicted").inc()
    return json.dumps({"id": item_id, "labels": result.inference.labels, "scores": result.inference.scores,
                       "model_version": result.model_id, "predicted_at": predicted_at, "run_id": run_id},
                      ensure_ascii=False)


def run(input_pattern: str, output: str, version_folder: str, *, expected_sha256: str | None = None,
        pipeline_args: Sequence[str] = (), run_id: str | None = None) -> dict[str, Any]:
    """Run the pipeline to the end and write `_SUCCESS`; returns what `_SUCCESS` holds."""
    run_id = run_id or uuid.uuid4().hex[:12]
    output = output.rstrip("/")
    predicted_at = datetime.now(timezone.utc).isoformat()
    handler = KeyedModelHandler(InferenceArtifactHandler(version_folder, expected_sha256))
    options = PipelineOptions(list(pipeline_args))
    with beam.Pipeline(options=options) as pipeline:
        parsed = (pipeline
                  | "Match" >> fileio.MatchFiles(input_pattern)
                  | "Read" >> fileio.ReadMatches()
                  | "Parse" >> beam.ParDo(_ParseLines()).with_outputs(_ParseLines.ERRORS, main="items"))
        (parsed.items
         | "Predict" >> RunInference(handler)
         | "Format" >> beam.Map(_record, run_id, predicted_at)
         | "Write" >> beam.io.WriteToText(f"{output}/part", file_name_suffix=".jsonl",
                                          shard_name_template="-SSSSS-of-NNNNN"))
        (parsed[_ParseLines.ERRORS]
         | "FormatErrors" >> beam.Map(lambda error: json.dumps({**error, "run_id": run_id}, ensure_ascii=False))
         | "WriteErrors" >> beam.io.WriteToText(f"{output}/errors/part", file_name_suffix=".jsonl",
                                                shard_name_template="-SSSSS-of-NNNNN"))
    result = pipeline.result
    counts = {name: _counter(result, name) for name in ("read", "predicted", "rejected")}
    model_version = json.loads(_read(f"{version_folder.rstrip('/')}/{METADATA_FILE}"))["version"]
    success = {"run_id": run_id, "input": input_pattern, "output": output, "model_version": model_version,
               "predicted_at": predicted_at, **counts}
    # Written last: its presence says every part above is complete.
    with FileSystems.create(f"{output}/{SUCCESS_FILE}") as handle:
        handle.write((json.dumps(success, indent=2) + "\n").encode())
    return success


def _counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))["counters"]
    return int(sum(counter.committed or 0 for counter in found))
