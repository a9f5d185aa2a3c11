"""`saikika explain`: why a model folder gives an item its labels, with the code predict_http's
`parameters.explain` and batch runs use (`saikika.model.explain`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.command("explain")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--title", default="", help="The item's title.")
@click.option("--description", default="", help="The item's description.")
@click.option("--tags", default="", help="The item's tags, comma-separated.")
@click.option("--top", "k", default=5, show_default=True, type=click.IntRange(1, None), help="Substrings per label.")
@click.option("--label", "labels", multiple=True, help="Explain this label (repeatable); default: the predicted ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanations as JSON (predict_http's shape).")
def explain(
    model_dir: Path, title: str, description: str, tags: str, k: int, labels: tuple[str, ...], as_json: bool
) -> None:
    """Show, for each label, the substrings of the item's text that added most to its score."""
    from saikika.core.items import ItemError, parse_item
    from saikika.model import artifact
    from saikika.model import explain as explainer

    files = artifact.read_dir(model_dir)
    if files.inference is None:
        raise click.ClickException(f"{model_dir} has no {artifact.INFERENCE_FILE}: retrain it to explain it")
    model = artifact.load_inference(files.inference, files.metadata)
    try:
        item = parse_item(
            {"id": "cli", "title": title, "description": description, "tags": [t for t in tags.split(",") if t]}
        )
    except ItemError as exc:
        raise click.BadParameter(str(exc)) from None
    unknown = [label for label in labels if label not in model.labels]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not among the model's labels: {', '.join(model.labels)}")
    try:
        explanations = explainer.explain(model, item, k, list(labels) or None)
    except explainer.NotExplainable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps([e.to_json() for e in explanations], ensure_ascii=False, indent=2))
    else:
        _print(model.version, explanations)


def _print(version: str, explanations) -> None:
    console = Console()
    if not explanations:
        console.print(f"{version} predicts no label for this item.")
    for e in explanations:
        table = Table(
            title=f"{e.label}: score {e.score:.4f} (intercept {e.intercept:+.3f}, other n-grams {e.ngrams_rest:+.3f})"
        )
        table.add_column("substring")
        table.add_column("contribution", justify="right")
        table.add_column("occurrences", justify="right")
        for term in e.ngrams:
            table.add_row(repr(term.text), f"{term.contribution:+.4f}", str(term.occurrences))
        for term in e.words:
            table.add_row(f"word {term.text!r}", f"{term.contribution:+.4f}", "1")
        console.print(table)
