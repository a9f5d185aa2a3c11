"""A candidate's report: per-label precision, recall, F1, ROC AUC and support, ROC curves and score
histograms (PNG), and a small HTML page tying them together. Built from the tuning split's scores.

The table lists every label; the figures plot the labels that matter, the PLOTTED_LABELS best supported ones, so
a model with hundreds of labels gets a readable figure of bounded size (matplotlib refuses an image past 2^16
pixels a side, which a figure sized by the label count reached near 840 labels)."""

from __future__ import annotations

import html
import io
import json

import matplotlib
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from saikika.core.metrics import above_thresholds, label_metrics

matplotlib.use("Agg")  # no display in a function instance; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402


def per_label_table(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> dict:
    table = label_metrics(truth, above_thresholds(scores, thresholds), labels)["per_label"]
    for j, label in enumerate(labels):
        both_classes = 0 < truth[:, j].sum() < len(truth)
        table[label]["roc_auc"] = float(roc_auc_score(truth[:, j], scores[:, j])) if both_classes else None
        table[label]["threshold"] = float(thresholds[j])
    return table


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


PLOTTED_LABELS = 24
ROC_LABELS = 12


def plotted(truth: np.ndarray, labels: list[str], limit: int) -> list[int]:
    """Indices of the `limit` labels with the most positives (ties by name), in label order."""
    support = truth.sum(axis=0)
    ranked = sorted(range(len(labels)), key=lambda j: (-support[j], labels[j]))[:limit]
    return sorted(ranked)


def build(
    version: str, scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, labels: list[str]
) -> dict[str, bytes]:
    """File name → bytes, for `models/<version>/report/`."""
    table = per_label_table(scores, truth, thresholds, labels)
    return {
        "index.html": _page(version, table, len(truth), len(labels)).encode("utf-8"),
        "roc.png": _roc_png(version, scores, truth, table, labels),
        "scores.png": _histograms_png(version, scores, truth, thresholds, labels),
        "per_label.json": (json.dumps(table, indent=2) + "\n").encode("utf-8"),
    }


def _roc_png(version: str, scores: np.ndarray, truth: np.ndarray, table: dict, labels: list[str]) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 6))
    for j in plotted(truth, labels, ROC_LABELS):
        label = labels[j]
        if table[label]["roc_auc"] is not None:
            fpr, tpr, _ = roc_curve(truth[:, j], scores[:, j])
            axis.plot(fpr, tpr, label=f"{label} (AUC {table[label]['roc_auc']:.3f})")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC per label — {version}")
    axis.legend(fontsize="small", loc="lower right")
    png = _png(figure)
    plt.close(figure)
    return png


def _histograms_png(
    version: str, scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, labels: list[str]
) -> bytes:
    shown = plotted(truth, labels, PLOTTED_LABELS)
    columns = 3
    rows = max(1, -(-len(shown) // columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False, constrained_layout=True
    )
    bins = np.linspace(0, 1, 21)
    for slot, axis in enumerate(axes.flat):
        if slot >= len(shown):
            axis.axis("off")
            continue
        j = shown[slot]
        positive = truth[:, j].astype(bool)
        axis.hist(scores[~positive, j], bins=bins, alpha=0.6, label="without label", color="tab:grey")
        axis.hist(scores[positive, j], bins=bins, alpha=0.7, label="with label", color="tab:blue")
        axis.axvline(thresholds[j], color="tab:red", linestyle="--", linewidth=1)
        axis.set_yscale("log")
        axis.set_title(labels[j], fontsize="small")
    axes.flat[0].legend(fontsize="x-small")
    figure.suptitle(f"held-out score histograms (red: threshold) — {version}")
    png = _png(figure)
    plt.close(figure)
    return png


def _page(version: str, table: dict, rows: int, n_labels: int) -> str:
    rows_html = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{_fmt(figures[key])}</td>" for key in ("precision", "recall", "f1", "roc_auc", "threshold"))
        + f"<td>{figures['support']}</td></tr>"
        for label, figures in table.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>saikika model {html.escape(version)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body>
<h1>Model {html.escape(version)}</h1>
<p>Measured on the {rows} rows of the tuning split. {n_labels} labels; the figures show the
{min(n_labels, PLOTTED_LABELS)} with the most examples (ROC: {min(n_labels, ROC_LABELS)}).</p>
<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>ROC AUC</th><th>threshold</th><th>support</th></tr>
{rows_html}</table>
<h2>ROC curves</h2><img src="roc.png" alt="ROC curves per label">
<h2>Score histograms</h2><img src="scores.png" alt="score histograms per label">
</body></html>
"""


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
