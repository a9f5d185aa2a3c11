"""The checks a version passes before it may become the champion, in one place for the promote function
and the `saikika models` commands: the skops pipeline loads with the trusted-type list, it predicts the
documented output on a fixed smoke batch, and the inference artifact predictors serve scores exactly as
the pipeline does."""

from __future__ import annotations

import math

import numpy as np

from saikika.core.errors import ModelIntegrityError
from saikika.core.items import Item
from saikika.model import artifact, pipeline_file
from saikika.model.artifact import ModelFiles
from saikika.model.inference_artifact import MAX_SCORE_DIFFERENCE
from saikika.model.label_model import LabelModel

SMOKE_ITEMS = (
    Item(id="smoke-ja", title="防水 ワイヤレス スピーカー", description="持ち運びに便利なコンパクト設計です。"),
    Item(id="smoke-en", title="vintage handmade leather bag", description="Gently used, ships in two days."),
    Item(id="smoke-tags", tags=("kids", "organic cotton")),
)


def validate(files: ModelFiles) -> LabelModel:
    """The version's pipeline as a LabelModel, once every check passed; ModelIntegrityError otherwise (for
    malformed metadata too), with a message saying what is wrong."""
    candidate = pipeline_file.load(files.model, files.metadata)
    smoke_check(candidate)
    if not files.metadata.get("inference"):
        raise ModelIntegrityError("metadata.json names no inference artifact, and predictors serve nothing else")
    if files.inference is None:
        raise ModelIntegrityError("the inference artifact named in metadata.json is missing")
    # Predictors serve the arrays: they must score exactly as the pipeline judged here.
    check_same_scores(candidate, artifact.load_inference(files.inference, files.metadata))
    return candidate


def _scores(model: LabelModel, texts: list[str]) -> np.ndarray:
    """The model's scores of `texts`, checked to be one probability per label; a pipeline that cannot score
    (a step that does not fit the next) is a broken version, not a crash."""
    try:
        scores = model.scores(texts)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ModelIntegrityError(f"smoke batch: the {model.backend} model cannot score: {exc}") from exc
    if scores.shape != (len(texts), len(model.labels)):
        raise ModelIntegrityError(
            f"smoke batch: scores of shape {scores.shape} for {len(texts)} texts and {len(model.labels)} labels"
        )
    if not (np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0)).all():
        raise ModelIntegrityError(
            f"smoke batch: the {model.backend} model gives a score that is not a probability in [0, 1]"
        )
    return scores


def smoke_check(model: LabelModel) -> None:
    """Raise ModelIntegrityError unless the model predicts the documented output shape on a fixed batch."""
    _scores(model, [item.text() for item in SMOKE_ITEMS])
    predictions = model.predict(list(SMOKE_ITEMS))
    if len(predictions) != len(SMOKE_ITEMS):
        raise ModelIntegrityError(f"smoke batch: {len(predictions)} predictions for {len(SMOKE_ITEMS)} items")
    for prediction in predictions:
        if set(prediction.scores) != set(model.labels):
            raise ModelIntegrityError("smoke batch: scores do not cover exactly the model's labels")
        if not all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in prediction.scores.values()):
            raise ModelIntegrityError("smoke batch: a score is not a probability in [0, 1]")
        if not set(prediction.labels) <= set(model.labels):
            raise ModelIntegrityError("smoke batch: a predicted label is not one of the model's labels")


def check_same_scores(pipeline_model: LabelModel, inference_model: LabelModel) -> None:
    """Raise ModelIntegrityError unless the inference arrays score the smoke batch as the pipeline does."""
    texts = [item.text() for item in SMOKE_ITEMS]
    difference = float(np.abs(_scores(pipeline_model, texts) - _scores(inference_model, texts)).max())
    if difference > MAX_SCORE_DIFFERENCE:
        raise ModelIntegrityError(
            f"inference file scores differ from the pipeline's by {difference:.3g} (at most {MAX_SCORE_DIFFERENCE:g} "
            "allowed): predictors would not serve what was judged"
        )
