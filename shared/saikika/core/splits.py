"""Stable splits by item id: the same item falls on the same side in every run, whatever else changes.

Two splits use it, under names kept apart on purpose:
- the *tuning split* (15 %, no salt): inside one training run, rows held back to tune thresholds and to
  measure the candidate, then trained on in the final refit;
- the *evaluation slice* (10 %, salt "eval:"): rows retraining never trains on, on which the promote
  function judges candidate and champion when no trusted holdout file (`eval/holdout.jsonl`) exists.
"""

from __future__ import annotations

import hashlib

TUNING_FRACTION = 0.15
EVALUATION_SLICE_FRACTION = 0.10
EVALUATION_SLICE_SALT = "eval:"
EVALUATION_SLICE_RULE = (
    f"sha256('{EVALUATION_SLICE_SALT}' + item id) < {EVALUATION_SLICE_FRACTION} of the hash space; never trained on"
)


def in_stable_fraction(item_id: str, fraction: float, salt: str = "") -> bool:
    """Whether sha256(salt + id), read as a number in [0, 1), falls below `fraction`."""
    digest = hashlib.sha256(f"{salt}{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def in_tuning_split(item_id: str) -> bool:
    return in_stable_fraction(item_id, TUNING_FRACTION)


def in_evaluation_slice(item_id: str) -> bool:
    return in_stable_fraction(item_id, EVALUATION_SLICE_FRACTION, EVALUATION_SLICE_SALT)
