"""`saikika batch`: a whole catalogue predicted with Apache Beam."""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import click

from saikika.tooling.cli.common import _models_bucket, _settings, console, progress_bars
from saikika.tooling.cli.mistakes import debugging


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

    quiet_library_warnings()
    from saikika.cloud import batch_pipeline
    from saikika.core import objects

    _refuse_unknown_pipeline_options(ctx.args)
    if input_pattern.startswith("gs://"):
        _check_bucket(input_pattern)
    if not batch_pipeline.matched_sizes(input_pattern):
        raise click.ClickException(
            f"no file matches --input {input_pattern}: check the path (quote a pattern, as in 'items/*.jsonl')"
        )
    folder, expected = _model_folder(model)
    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    errors = None
    if output is None:
        predictions = _settings().predictions_bucket
        day = datetime.now(UTC)
        output = f"gs://{predictions}/{objects.batch_run_folder(day, run_id)}"
        errors = f"gs://{predictions}/{objects.batch_errors_folder(day, run_id)}"
    with progress_bars() as report:
        success = batch_pipeline.run(
            input_pattern,
            output,
            folder,
            expected_sha256=expected,
            errors=errors,
            pipeline_args=[f"--runner={runner}", *ctx.args],
            run_id=run_id,
            progress=_counting(report),
        )
    console.print(
        f"batch {success['run_id']}: {success['read']} lines read, {success['predicted']} predicted, "
        f"{success['rejected']} rejected, model {success['model_version']} → {output}"
    )


def _check_bucket(input_pattern: str) -> None:
    """A stopped emulator is told in seconds; a bucket that does not exist in one line."""
    from saikika.cloud import gcs

    name = input_pattern[5:].split("/", 1)[0]
    if not gcs.answering_bucket(None, name).exists():
        raise click.ClickException(f"no bucket gs://{name} (in --input {input_pattern}): check its name")


def _refuse_unknown_pipeline_options(args: list[str]) -> None:
    """Beam drops arguments it cannot parse with a warning, so a mistyped option (`--ouput x/`) would quietly
    write elsewhere: anything neither `saikika batch` nor any of Beam's pipeline options knows is an error."""
    import argparse

    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    families, seen = list(PipelineOptions.__subclasses__()), set()
    while families:
        family = families.pop()
        if family not in seen:
            seen.add(family)
            families.extend(family.__subclasses__())
            try:
                family._add_argparse_args(parser)
            except argparse.ArgumentError:
                pass  # an option two families both declare
    unknown = [arg for arg in parser.parse_known_args(args)[1] if arg.startswith("-")]
    if unknown:
        raise click.ClickException(
            f"no such option: {' '.join(unknown)} (saikika batch --help lists its own; the rest go to Beam's "
            "pipeline options, such as --direct_num_workers or --temp_location)"
        )


def _counting(report: Callable[[str, int, int], None]) -> Callable[[str], None]:
    """The pipeline's events ("read", "rejected", "predicted") as running counts on progress bars."""
    stages = {"read": "lines read", "rejected": "lines rejected", "predicted": "items predicted"}
    counts: Counter[str] = Counter()
    lock = threading.Lock()  # Beam may run bundles on several threads

    def tell(event: str) -> None:
        with lock:
            counts[event] += 1
            report(stages[event], counts[event], 0)

    return tell


# Start-up warnings of the libraries under Beam that say nothing to a local user: Beam's optional GCP extras
# (apitools, BigQuery), its memory probe, and google-auth's notes on default credentials.
_STARTUP_NOISE = (
    "apitools not found",
    "Resource module is not available",
    "Unable to find default credentials",
    "No project ID could be determined",
    "Your application has authenticated using end user credentials",
)


class _LibraryNoise(logging.Filter):
    """`_STARTUP_NOISE`, and Beam's log of a step's exception with its traceback: the exception goes on to the
    command, which tells it in one line (a user's mistake, such as a refused model) or with its traceback (a bug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "apache_beam.runners.common" and record.exc_info:
            return False
        return not record.getMessage().startswith(_STARTUP_NOISE)


def quiet_library_warnings() -> None:
    """Keep `_LibraryNoise` from a local user of `saikika batch` (all of it shows with `saikika --debug`)."""
    if debugging():
        return
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
    for handler in root.handlers:
        handler.addFilter(_LibraryNoise())
    for message in _STARTUP_NOISE:
        warnings.filterwarnings("ignore", message=re.escape(message))


def _model_folder(model: str) -> tuple[str, str | None]:
    """Where the version's files are, and the inference sha256 the champion pointer names (if it is the champion)."""
    if Path(model).is_dir():
        return str(Path(model)), None
    from saikika.cloud import registry
    from saikika.core import objects
    from saikika.core.errors import ConfigError

    try:
        bucket = _models_bucket()
    except (click.ClickException, ConfigError) as exc:
        looked_for = "the champion" if model == "champion" else f"no model folder {model}; for a version {model!r}"
        why = exc.message if isinstance(exc, click.ClickException) else str(exc)
        raise click.ClickException(f"{looked_for}: {why}") from exc
    if model == "champion":
        champion = registry.read_champion(bucket)
        if champion is None:
            raise click.ClickException("there is no champion yet: pass --model VERSION or a model folder")
        return f"gs://{bucket.name}/{objects.version_prefix(champion.version)}", champion.inference_sha256
    if registry.read_metadata(bucket, model) is None:
        raise click.ClickException(
            f"no model folder {model} and no version {model!r} in gs://{bucket.name}/models/: pass a folder "
            "`saikika train --out` wrote, a version `saikika models list` shows, or champion"
        )
    return f"gs://{bucket.name}/{objects.version_prefix(model)}", None


COMMANDS = (batch,)
