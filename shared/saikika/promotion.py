"""The promotion rule, pure: a candidate replaces the champion when it is not worse overall (micro F1
within SAIKIKA_PROMOTION_TOLERANCE) and no label both models know falls by more than
SAIKIKA_PROMOTION_LABEL_MARGIN (absolute F1)."""

from __future__ import annotations

import math

from saikika.items import Item
from saikika.inference import MAX_SCORE_DIFFERENCE
from saikika.prediction import LabelModel

SMOKE_ITEMS = (
    Item(id="smoke-ja", title="防水 ワイヤレス スピーカー", description="持ち運びに便利なコンパクト設計です。"),
    Item(id="smoke-en", title="vintage handmade leather bag", description="Gently used, ships in two days."),
    Item(id="smoke-tags", tags=("kids", "organic cotton")),
)


def smoke_check(model: LabelModel) -> None:
    """Raise ValueError unless the model predicts the documented output shape on a fixed batch."""
    predictions = model.predict(list(SMOKE_ITEMS))
    if len(predictions) != len(SMOKE_ITEMS):
        raise ValueError(f"smoke batch: {len(predictions)} predictions for {len(SMOKE_ITEMS)} items")
    for prediction in predictions:
        if set(prediction.scores) != set(model.labels):
            raise ValueError("smoke batch: scores do not cover exactly the model's labels")
        if not all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in prediction.scores.values()):
            raise ValueError("smoke batch: a score is not a probability in [0, 1]")
        if not set(prediction.labels) <= set(model.labels):
            raise ValueError("smoke batch: a predicted label is not one of the model's labels")


def check_same_scores(pipeline_model: LabelModel, inference_model: LabelModel) -> None:
    """Raise ValueError unless the inference arrays score the smoke batch as the pipeline does."""
    texts = [item.text() for item in SMOKE_ITEMS]
    difference = float(abs(pipeline_model.scores(texts) - inference_model.scores(texts)).max())
    if difference > MAX_SCORE_DIFFERENCE:
        raise ValueError(f"inference file scores differ from the pipeline's by {difference:.3g}")


def decide(candidate: dict | None, champion: dict | None, tolerance: float, label_margin: float, *,
           has_champion: bool, shared_labels: set[str]) -> tuple[bool, str]:
    """(promote?, reason) from both models' metrics on the same rows and labels; a metrics dict is
    None when there were no evaluation rows."""
    if not has_champion:
        return True, "there is no usable champion"
    if candidate is None or champion is None:
        return False, "no evaluation rows: cannot show the candidate is not worse than the champion"
    drop = champion["micro_f1"] - candidate["micro_f1"]
    if drop > tolerance:
        return False, (f"micro F1 {candidate['micro_f1']:.4f} is {drop:.4f} below the champion's "
                       f"{champion['micro_f1']:.4f} (tolerance {tolerance})")
    regressed = []
    for label in sorted(shared_labels):
        before, figures = champion["per_label"].get(label), candidate["per_label"].get(label)
        if before and figures and before["support"] > 0 and before["f1"] - figures["f1"] > label_margin:
            regressed.append(f"{label} {before['f1']:.3f}→{figures['f1']:.3f}")
    if regressed:
        return False, f"labels regress by more than {label_margin} F1: {', '.join(regressed)}"
    return True, (f"micro F1 {candidate['micro_f1']:.4f} vs champion {champion['micro_f1']:.4f}; "
                  f"no shared label falls by more than {label_margin}")
