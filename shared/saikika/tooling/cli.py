"""The `saikika` command: train, evaluate, push models, run the local stack and the demo."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import UTC
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from saikika.tooling import explain_command

console = Console(stderr=True)


@click.group()
def main() -> None:
    """Saikika: event-driven label prediction for Google Cloud."""


# ---- training ------------------------------------------------------------------------------
@main.command()
@click.option("--data", "data", multiple=True, required=True, help="JSONL file or gs:// URI (repeatable).")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="Folder for model.skops and metadata.json."
)
@click.option(
    "--in-memory-rows",
    default=50_000,
    show_default=True,
    help="Up to this many rows train in memory; more stream from the files in bounded memory.",
)
@click.option(
    "--word-vectors",
    "word_vectors",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Add the title's pretrained word vectors (a file from `saikika word-vectors import`).",
)
def train(data: tuple[str, ...], out: Path, in_memory_rows: int, word_vectors: Path | None) -> None:
    """Train a multi-label text model from labeled JSONL rows (streamed, in bounded memory, above
    --in-memory-rows)."""
    from itertools import islice

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from saikika.cloud import data_files
    from saikika.model import artifact, training

    started = time.perf_counter()
    config = training.DEFAULT_CONFIG
    if word_vectors is not None:
        from saikika.model.word_vectors import WordVectors

        try:
            config = training.TrainingConfig.with_word_vectors(WordVectors.from_bytes(word_vectors.read_bytes()))
        except ValueError as exc:
            raise click.ClickException(f"{word_vectors}: {exc}") from exc
    invalid: list[dict] = []
    # Read up to the limit: a small data set is trained in memory as it is; a larger one streams from the files.
    head = list(islice(data_files.iter_items(data, invalid), in_memory_rows + 1))
    streamed = len(head) > in_memory_rows
    del head[in_memory_rows:]

    invalid_per_pass: list[list[dict]] = []

    def batches():
        invalid_per_pass.append([])
        items = data_files.iter_items(data, invalid_per_pass[-1])
        while batch := list(islice(items, 5_000)):
            yield batch

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total or None)
            progress.update(tasks[stage], completed=done)

        try:
            trained = (
                training.train_streaming(batches, progress=report, config=config)
                if streamed
                else training.train(head, progress=report, config=config)
            )
        except training.TrainingDataError as exc:
            raise click.ClickException(str(exc)) from exc
    if streamed:
        invalid = invalid_per_pass[-1]
    if invalid:
        console.print(f"[yellow]{len(invalid)} invalid row(s) skipped[/]; first: {invalid[0]}")
    files = training.serialize(
        trained,
        extra={
            "data_sources": list(data),
            "invalid_rows": len(invalid),
            "training_mode": "streamed" if streamed else "in memory",
            "training_seconds": round(time.perf_counter() - started, 2),
        },
    )
    artifact.write_dir(out, files)
    data_bytes, metadata = files.model, files.metadata
    m = trained.metrics
    console.print(
        f"model {metadata['version']}: {trained.rows_used} rows, {len(trained.labels)} labels, "
        f"tuning-split top-1 {m['top1_accuracy']:.4f}, micro F1 {m['micro_f1']:.4f}, macro F1 {m['macro_f1']:.4f}, "
        f"{len(data_bytes) / 1e6:.1f} MB → {out}"
    )


@main.command()
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--data", "data", multiple=True, required=True, help="Labeled JSONL file or gs:// URI (repeatable).")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Write the metrics as JSON here.")
def evaluate(model_dir: Path, data: tuple[str, ...], out: Path | None) -> None:
    """Evaluate a model folder on labeled rows: top-1 accuracy, micro/macro F1, per-label figures."""
    from saikika.cloud import data_files
    from saikika.model import artifact, evaluation, pipeline_file

    files = artifact.read_dir(model_dir)
    loaded = pipeline_file.load(files.model, files.metadata)
    rows = data_files.load_rows(data)
    result = evaluation.evaluate(loaded, rows.items)
    result["invalid_rows"] = len(rows.invalid)
    result["model_version"] = loaded.version
    table = Table(title=f"{loaded.version} on {result['rows']} rows")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, figures in result["per_label"].items():
        table.add_row(
            label,
            f"{figures['precision']:.3f}",
            f"{figures['recall']:.3f}",
            f"{figures['f1']:.3f}",
            str(figures["support"]),
        )
    Console().print(table)
    Console().print(
        f"top-1 accuracy {result['top1_accuracy']:.4f}   micro F1 {result['micro_f1']:.4f}   "
        f"macro F1 {result['macro_f1']:.4f}"
    )
    if out:
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


@main.command("catalogue")
@click.option("--rows", default=3000, show_default=True, help="How many items to generate.")
@click.option("--seed", default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def catalogue_command(rows: int, seed: int, out: Path) -> None:
    """Write a synthetic, labeled marketplace catalogue (JSONL) made by saikika's own generator."""
    from saikika.cloud import data_files
    from saikika.model import catalogue

    count = data_files.write_jsonl(out, catalogue.generate(rows, seed))
    console.print(f"{count} items → {out}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
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


# ---- models bucket ---------------------------------------------------------------------------
@main.group("word-vectors")
def word_vectors_group() -> None:
    """Pretrained title word vectors: build a file, upload it for retraining."""


@word_vectors_group.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--weight",
    default=1.0,
    show_default=True,
    help="The feature's scale beside the TF-IDF row (length 1): a typical word vector has length 1.",
)
def word_vectors_import(source: Path, out: Path, weight: float) -> None:
    """Build a word-vectors file from a spaCy vocabulary: a model package's folder or its wheel (e.g. ja-ginza's,
    chiVe vectors; `make word-vectors`)."""
    from saikika.model.artifact import sha256_hex
    from saikika.tooling.word_vectors_import import from_spacy_vocab

    try:
        vectors = from_spacy_vocab(source, weight)
    except (ValueError, KeyError, OSError) as exc:
        raise click.ClickException(f"{source}: {exc}") from exc
    data = vectors.to_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    console.print(
        f"{vectors.hashes.shape[0]} words, {vectors.vectors.shape[0]} vectors of {vectors.dimensions}, "
        f"{len(data) / 1e6:.1f} MB, sha256 {sha256_hex(data)} → {out}"
    )


@word_vectors_group.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def word_vectors_push(file: Path) -> None:
    """Upload a word-vectors file to gs://$SAIKIKA_MODELS_BUCKET/word-vectors/ and print the two settings that
    make retraining use it."""
    from google.api_core.exceptions import PreconditionFailed

    from saikika.core import objects
    from saikika.model.artifact import sha256_hex
    from saikika.model.word_vectors import WordVectors

    data = file.read_bytes()
    try:
        WordVectors.from_bytes(data)  # refuse what retraining would refuse
    except ValueError as exc:
        raise click.ClickException(f"refused: {exc}") from exc
    digest = sha256_hex(data)
    name = f"{objects.WORD_VECTORS_PREFIX}{file.stem}-{digest[:12]}.npz"
    bucket = _models_bucket()
    try:
        bucket.blob(name).upload_from_string(data, content_type="application/octet-stream", if_generation_match=0)
    except PreconditionFailed:
        pass  # already there: the name holds the content's digest
    console.print(f"gs://{bucket.name}/{name}")
    print(f"SAIKIKA_WORD_VECTORS={name}\nSAIKIKA_WORD_VECTORS_SHA256={digest}")


@main.group()
def models() -> None:
    """Model versions in the models bucket."""


def _settings():
    from saikika.core.errors import ConfigError
    from saikika.core.settings import Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"{exc} (for the local stack: set -a; . .saikika/local.env; set +a)") from exc


def _models_bucket():
    from saikika.cloud import gcs

    settings = _settings()
    return gcs.client(settings.project).bucket(settings.models_bucket)


@models.command("push")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--promote", is_flag=True, help="Also point models/champion.json at it.")
def models_push(model_dir: Path, promote: bool) -> None:
    """Upload a trained model folder to gs://$SAIKIKA_MODELS_BUCKET/models/<version>/."""
    from saikika.cloud import registry
    from saikika.core import objects
    from saikika.model import artifact

    files = artifact.read_dir(model_dir)
    _validate(files)  # refuse to upload what the promote function or a predictor would refuse
    bucket = _models_bucket()
    version = registry.push(bucket, *files)
    console.print(f"pushed {version} → gs://{bucket.name}/{objects.version_prefix(version)}")
    if promote:
        _promote_by_hand(bucket, files.metadata, "promoted by hand (models push --promote)")


def _validate(files) -> None:
    from saikika.core.errors import ModelIntegrityError
    from saikika.model import validation

    try:
        validation.validate(files)
    except (ModelIntegrityError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"refused: {exc}") from exc


def _promote_by_hand(bucket, metadata: dict, reason: str) -> None:
    """Compare-and-swap the pointer and log the decision, as the promote function does."""
    from saikika.cloud import registry

    version = metadata["version"]
    current = registry.read_champion(bucket)
    try:
        registry.set_champion(bucket, metadata, current, reason=reason)
    except registry.ChampionChanged as exc:
        raise click.ClickException(f"{exc}; nothing was changed, run it again") from exc
    registry.record_decision(
        bucket,
        {
            "version": version,
            "action": "promote-by-hand",
            "outcome": "promoted",
            "reason": reason,
            "previous_champion": current.version if current else None,
        },
    )
    console.print(f"champion is now {version}" + (f" (was {current.version})" if current else ""))


@models.command("list")
def models_list() -> None:
    """Versions with their metrics and decision; the champion is marked."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    champion = registry.read_champion(bucket)
    table = Table(title=f"gs://{bucket.name}/models/")
    for column in ("", "version", "rows", "micro F1", "macro F1", "top-1", "decision", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for version in registry.versions(bucket):
        metadata = registry.read_metadata(bucket, version)
        decision = registry.read_decision(bucket, version)
        metrics = metadata.get("metrics", {})
        table.add_row(
            "★" if champion and champion.version == version else "",
            version,
            str(metadata.get("rows_used", "")),
            _fmt(metrics.get("micro_f1")),
            _fmt(metrics.get("macro_f1")),
            _fmt(metrics.get("top1_accuracy")),
            decision["outcome"] if decision else "—",
            (decision.get("reason", "") if decision else "")[:60],
        )
    Console(width=max(Console().width, 160)).print(table)
    if champion is None:
        Console().print("no champion yet")


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


@models.command("promote")
@click.argument("version")
def models_promote(version: str) -> None:
    """Make VERSION the champion by hand (compare-and-swap; the model is verified first)."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    found = registry.read_version(bucket, version)
    if found is None:
        raise click.ClickException(f"no committed version {version} (models/{version}/metadata.json is missing)")
    _validate(found)  # refuse what the promote function or a predictor would refuse
    _promote_by_hand(bucket, found.metadata, "promoted by hand (saikika models promote)")


@models.command("rollback")
def models_rollback() -> None:
    """Point the champion back at the previous one (compare-and-swap)."""
    from saikika.cloud import registry

    bucket = _models_bucket()
    current = registry.read_champion(bucket)
    if current is None:
        raise click.ClickException("there is no champion to roll back")
    try:
        restored = registry.rollback(bucket, current)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except registry.ChampionChanged as exc:
        raise click.ClickException(f"{exc}; nothing was changed, run it again") from exc
    registry.record_decision(
        bucket,
        {
            "version": restored.version,
            "action": "rollback",
            "outcome": "promoted",
            "previous_champion": current.version,
        },
    )
    console.print(f"champion rolled back to {restored.version} (was {current.version})")


@main.command("package")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/functions"), show_default=True)
@click.option("--lock", is_flag=True, help="First rewrite functions/<name>/requirements.txt from this environment.")
@click.option("--functions-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def package(out: Path, lock: bool, functions_dir: Path | None) -> None:
    """Build one reproducible zip per function (main.py, the saikika package, pinned requirements.txt)."""
    from saikika.tooling import packaging
    from saikika.tooling.local_stack import find_functions_dir

    functions_dir = functions_dir or find_functions_dir()
    if lock:
        for path in packaging.write_locks(functions_dir):
            console.print(f"locked {path}")
    for function in packaging.FUNCTION_DEPENDENCIES:
        target = packaging.build(functions_dir, out, function)
        print(f"{target}  sha256={packaging.sha256_file(target)}  ({target.stat().st_size:,} bytes)")


# ---- local stack and demo ---------------------------------------------------------------------
@main.group()
def local() -> None:
    """The local stack on the official emulators."""


@local.command("up")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
@click.option("--functions-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def local_up(state_dir: Path, functions_dir: Path | None) -> None:
    """Start the emulators and one functions-framework process per function; stop all on SIGINT/SIGTERM."""
    from saikika.tooling.local_stack import LocalStack, StackError

    stopping = False

    def request_stop(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stack = LocalStack(state_dir=state_dir, functions_dir=functions_dir)
    try:
        stack.start()
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        console.print(f"environment: {state_dir / 'local.env'}   logs: {state_dir / 'logs'}")
        print("READY", flush=True)
        while not stopping:
            stack.check_alive()
            time.sleep(0.2)
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        sys.exit(1)
    finally:
        stack.stop()
        console.print("stopped")


@main.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".saikika"), show_default=True)
def demo(state_dir: Path) -> None:
    """The main job: the whole loop on the local stack, on a synthetic catalogue."""
    from saikika.tooling.demo import run

    run(state_dir)


main.add_command(explain_command.explain)

if __name__ == "__main__":
    main()
