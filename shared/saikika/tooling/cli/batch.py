"""`saikika batch`: a whole catalogue predicted with Apache Beam."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import click

from saikika.tooling.cli.common import _models_bucket, _settings, console


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--input", "input_pattern", required=True, help="Items JSONL: a file, a glob, local or gs://.")
@click.option(
    "--output",
    help="Folder for part-SSSSS-of-NNNNN.jsonl, errors/ and _SUCCESS. Default: the predictions "
    "bucket's batch/dt=DAY/run=RUN/ (what the BigQuery table reads), bad lines under rejected/batch/.",
)
@click.option(
    "--model",
    default="champion",
    show_default=True,
    help="champion, a VERSION in the models bucket, or a local model folder.",
)
@click.option("--runner", default="DirectRunner", show_default=True, help="DirectRunner or DataflowRunner.")
@click.pass_context
def batch(ctx: click.Context, input_pattern: str, output: str | None, model: str, runner: str) -> None:
    """Predict a whole catalogue with Apache Beam. Further arguments are Beam pipeline options
    (--project, --region, --temp_location, --max_num_workers, --machine_type, --direct_num_workers, ...)."""
    import uuid
    from datetime import datetime

    from saikika.cloud import batch_pipeline
    from saikika.core import objects

    folder, expected = _model_folder(model)
    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    errors = None
    if output is None:
        predictions = _settings().predictions_bucket
        day = datetime.now(UTC)
        output = f"gs://{predictions}/{objects.batch_run_folder(day, run_id)}"
        errors = f"gs://{predictions}/{objects.batch_errors_folder(day, run_id)}"
    success = batch_pipeline.run(
        input_pattern,
        output,
        folder,
        expected_sha256=expected,
        errors=errors,
        pipeline_args=[f"--runner={runner}", *ctx.args],
        run_id=run_id,
    )
    console.print(
        f"batch {success['run_id']}: {success['read']} lines read, {success['predicted']} predicted, "
        f"{success['rejected']} rejected, model {success['model_version']} → {output}"
    )


def _model_folder(model: str) -> tuple[str, str | None]:
    """Where the version's files are, and the inference sha256 the champion pointer names (if it is the champion)."""
    if Path(model).is_dir():
        return str(Path(model)), None
    from saikika.cloud import registry
    from saikika.core import objects

    bucket = _models_bucket()
    if model == "champion":
        champion = registry.read_champion(bucket)
        if champion is None:
            raise click.ClickException("there is no champion yet: pass --model VERSION or a model folder")
        return f"gs://{bucket.name}/{objects.version_prefix(champion.version)}", champion.inference_sha256
    return f"gs://{bucket.name}/{objects.version_prefix(model)}", None


COMMANDS = (batch,)
