"""The promotion rule, pure: a candidate replaces the champion when it is not worse overall (micro F1
within SAIKIKA_PROMOTION_TOLERANCE) and no label both models know falls by more than
SAIKIKA_PROMOTION_LABEL_MARGIN (absolute F1)."""

from __future__ import annotations


def decide(
    candidate: dict | None,
    champion: dict | None,
    tolerance: float,
    label_margin: float,
    *,
    has_champion: bool,
    shared_labels: set[str],
) -> tuple[bool, str]:
    """(promote?, reason) from both models' metrics on the same rows and labels; a metrics dict is
    None when there were no evaluation rows."""
    if not has_champion:
        return True, "there is no usable champion"
    if candidate is None or champion is None:
        return False, "no evaluation rows: cannot show the candidate is not worse than the champion"
    drop = champion["micro_f1"] - candidate["micro_f1"]
    if drop > tolerance:
        return False, (
            f"micro F1 {candidate['micro_f1']:.4f} is {drop:.4f} below the champion's "
            f"{champion['micro_f1']:.4f} (tolerance {tolerance})"
        )
    regressed = []
    for label in sorted(shared_labels):
        before, figures = champion["per_label"].get(label), candidate["per_label"].get(label)
        if before and figures and before["support"] > 0 and before["f1"] - figures["f1"] > label_margin:
            regressed.append(f"{label} {before['f1']:.3f}→{figures['f1']:.3f}")
    if regressed:
        return False, f"labels regress by more than {label_margin} F1: {', '.join(regressed)}"
    return True, (
        f"micro F1 {candidate['micro_f1']:.4f} vs champion {champion['micro_f1']:.4f}; "
        f"no shared label falls by more than {label_margin}"
    )
