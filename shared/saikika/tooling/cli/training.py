"""`saikika train`, `evaluate`, `catalogue` and `explain`: models made, measured and explained."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from saikika.tooling.cli.common import console, progress_bars
from saikika.tooling.explain_command import explain


@click.command()
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
    from saikika.model import artifact, training

    started = time.perf_counter()
    config = _training_config(word_vectors)
    trained, invalid, mode = _train_rows(data, in_memory_rows, config)
    _report_invalid(invalid)
    files = training.serialize(
        trained,
        extra={
            "data_sources": list(data),
            "invalid_rows": len(invalid),
            "training_mode": str(mode),
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


def _report_invalid(invalid: list[dict], shown: int = 10) -> None:
    """The rows skipped, counted, with where they are (file and line numbers) and the first one's reason."""
    if not invalid:
        return
    where: dict[str, list[str]] = {}
    for row in invalid[:shown]:
        where.setdefault(row["source"], []).append(str(row["line"]))
    places = "; ".join(
        f"{source} line{'s' if len(lines) > 1 else ''} {', '.join(lines)}" for source, lines in where.items()
    )
    more = f" and {len(invalid) - shown} more" if len(invalid) > shown else ""
    details = escape(f"{places}{more} (first: {invalid[0]['error']})")
    console.print(f"[yellow]{len(invalid)} invalid row(s) skipped[/]: {details}", highlight=False)


def _training_config(word_vectors: Path | None):
    """The default training, or with the title word vectors of `--word-vectors` (refused if the file is not one)."""
    from saikika.model import training

    config = training.DEFAULT_CONFIG
    if word_vectors is not None:
        from saikika.model.word_vectors import WordVectors

        try:
            config = training.TrainingConfig.with_word_vectors(WordVectors.from_bytes(word_vectors.read_bytes()))
        except ValueError as exc:
            raise click.ClickException(f"{word_vectors}: {exc}") from exc
    return config


def _train_rows(data: tuple[str, ...], in_memory_rows: int, config):
    """(the trained model, the invalid rows, how it trained): `training.train_from`, the one entry point, decides
    between in memory (up to `in_memory_rows` rows) and streamed."""
    from saikika.cloud import data_files
    from saikika.model import training

    # Each read of the files (the head that decides, or a streamed pass) collects its own invalid rows.
    invalid_per_pass: list[list[dict]] = []

    def items():
        invalid_per_pass.append([])
        return data_files.iter_items(data, invalid_per_pass[-1])

    with progress_bars() as report:
        try:
            result = training.train_from(items, in_memory_rows, progress=report, config=config)
        except training.TrainingDataError as exc:
            raise click.ClickException(str(exc)) from exc
    return result.model, invalid_per_pass[-1], result.mode


@click.command()
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
    _report_invalid(rows.invalid)
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
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


@click.command("catalogue")
@click.option("--rows", default=3000, show_default=True, help="How many items to generate.")
@click.option("--seed", default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def catalogue_command(rows: int, seed: int, out: Path) -> None:
    """Write a synthetic, labeled marketplace catalogue (JSONL) made by saikika's own generator."""
    from saikika.cloud import data_files
    from saikika.model import catalogue

    count = data_files.write_jsonl(out, catalogue.generate(rows, seed))
    console.print(f"{count} items → {out}")


COMMANDS = (train, evaluate, catalogue_command, explain)
