"""`saikika word-vectors import` and `push`: the pretrained title word vectors, built and uploaded."""

from __future__ import annotations

from pathlib import Path

import click

from saikika.tooling.cli.common import _models_bucket, console


@click.group("word-vectors")
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
    from saikika.cloud import registry
    from saikika.model.word_vectors import WordVectors

    data = file.read_bytes()
    try:
        WordVectors.from_bytes(data)  # refuse what retraining would refuse
    except ValueError as exc:
        raise click.ClickException(f"refused: {exc}") from exc
    bucket = _models_bucket()
    name, digest = registry.push_word_vectors(bucket, data, file.stem)
    console.print(f"gs://{bucket.name}/{name}")
    print(f"SAIKIKA_WORD_VECTORS={name}\nSAIKIKA_WORD_VECTORS_SHA256={digest}")


COMMANDS = (word_vectors_group,)
