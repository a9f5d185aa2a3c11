"""Live quality (`saikika.core.live_quality`) on a hand-made set whose answer is worked out by hand, the degraded
rule as a table, and the object's shape (the monitoring contract's keys)."""

from __future__ import annotations

import json

import pytest

from saikika.core import objects
from saikika.core.live_quality import (
    DegradedRule,
    LiveQuality,
    Window,
    exact_match,
    label_matrices,
    measure,
    worst_label,
)

# Five feedback rows: (confirmed labels, the champion's labels).
#   1: {a}    vs {a}      exact
#   2: {a, b} vs {a}      b missed
#   3: {b}    vs {b, c}   c extra
#   4: {}     vs {}       exact
#   5: {c}    vs {a}      a extra, c missed
# a: tp 2, fp 1, fn 0 → P 2/3, R 1, F1 0.8, support 2
# b: tp 1, fp 0, fn 1 → P 1, R 1/2, F1 2/3, support 2
# c: tp 0, fp 1, fn 1 → 0, 0, 0, support 1
# micro: tp 3, fp 2, fn 2 → 6/10; macro (0.8 + 2/3 + 0)/3; exact 2/5
TRUTH = [("a",), ("a", "b"), ("b",), (), ("c",)]
PREDICTED = [("a",), ("a",), ("b", "c"), (), ("a",)]
WINDOW = Window(
    champion_version="20261201T000000-abcd1234",
    run_started="2026-12-06T10:00:00+00:00",
    computed_at="2026-12-06T10:00:02+00:00",
    first_event_time="2026-12-06T09:00:00+00:00",
    last_event_time="2026-12-06T09:59:00+00:00",
    trained_until="2026-12-06T08:00:00+00:00",
    offline_micro_f1=0.95,
)
CONTRACT_KEYS = {
    "champion_version",
    "computed_at",
    "run_started",
    "rows",
    "first_event_time",
    "last_event_time",
    "trained_until",
    "micro_f1",
    "macro_f1",
    "exact_match",
    "per_label",
    "offline_micro_f1",
    "degraded",
    "why",
}


# The contract's defaults (SAIKIKA_LIVE_QUALITY_MIN_ROWS, SAIKIKA_LIVE_F1_FLOOR, SAIKIKA_LIVE_F1_MARGIN).
DEFAULT_RULE = DegradedRule(min_rows=20, floor=0.5, margin=0.1)


def hand_made(rule: DegradedRule = DEFAULT_RULE) -> LiveQuality:
    return measure(*label_matrices(TRUTH, PREDICTED), WINDOW, rule)


def test_the_figures_are_the_ones_worked_out_by_hand():
    quality = hand_made()
    assert quality.rows == 5
    assert quality.micro_f1 == pytest.approx(0.6)
    assert quality.macro_f1 == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    assert quality.exact_match == pytest.approx(0.4)
    assert quality.per_label["a"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert quality.per_label["b"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert quality.per_label["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert quality.worst == ("c", 0.0)
    # Five rows are fewer than the default minimum: recorded, never called degraded.
    assert (quality.degraded, quality.why) == (False, None)
    assert (quality.champion_version, quality.trained_until, quality.offline_micro_f1) == (
        WINDOW.champion_version,
        WINDOW.trained_until,
        0.95,
    )


def test_the_same_rows_past_the_minimum_are_degraded_and_name_the_worst_label():
    quality = hand_made(DegradedRule(min_rows=5, floor=0.5, margin=0.1))
    assert quality.degraded
    assert "0.3500 below the champion's offline 0.9500" in quality.why
    assert "worst label c (F1 0.0000)" in quality.why and "on 5 feedback rows" in quality.why
    assert "floor" not in quality.why  # 0.6 is above the floor


def test_a_label_the_champion_does_not_know_counts_as_never_predicted():
    truth, predicted, labels = label_matrices([("new", "a"), ("a",)], [("a",), ("a",)])
    assert labels == ["a", "new"]
    assert truth.tolist() == [[1, 1], [1, 0]] and predicted.tolist() == [[1, 0], [1, 0]]
    quality = measure(truth, predicted, labels, WINDOW, DegradedRule(0, 0.5, 0.1))
    assert quality.per_label["new"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert quality.exact_match == 0.5 and quality.worst == ("new", 0.0)


def test_exact_match_compares_whole_label_sets():
    truth, predicted, _ = label_matrices([("a", "b"), ("b",), ()], [("b", "a"), ("a",), ()])
    assert exact_match(truth, predicted) == pytest.approx(2 / 3)
    empty, _, _ = label_matrices([], [])
    assert exact_match(empty, empty) == 0.0


def test_the_worst_label_needs_support():
    per_label = {
        "never-true": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "weak": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 4},
        "tied-b": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 1},
    }
    assert worst_label(per_label) == ("weak", 0.5)
    assert worst_label({"never-true": per_label["never-true"]}) is None
    assert worst_label({"z": per_label["weak"], "y": per_label["weak"]}) == ("y", 0.5)


RULE = DegradedRule(min_rows=20, floor=0.5, margin=0.25)  # dyadic figures: the edges are exact


@pytest.mark.parametrize(
    "case, rows, micro_f1, offline, degraded, says",
    [
        ("too few rows, however bad", 19, 0.0, 0.9, False, None),
        ("the minimum reached, below the floor", 20, 0.25, None, True, "below the floor 0.5"),
        ("at the floor exactly", 20, 0.5, None, False, None),
        ("more than the margin below offline", 400, 0.6, 0.875, True, "0.2750 below the champion's offline 0.8750"),
        ("exactly the margin below offline", 400, 0.625, 0.875, False, None),
        ("within the margin", 400, 0.75, 0.875, False, None),
        ("live better than offline", 400, 0.9, 0.875, False, None),
        ("no offline figure: only the floor", 400, 0.625, None, False, None),
        (
            "below the floor and the margin",
            400,
            0.25,
            0.875,
            True,
            "(SAIKIKA_LIVE_F1_FLOOR); live micro F1 0.2500 is 0.6250 below",
        ),
    ],
)
def test_the_degraded_rule(case, rows, micro_f1, offline, degraded, says):
    why = RULE.why(rows, micro_f1, offline, ("kids", 0.125))
    assert (why is not None) == degraded, case
    if says:
        assert says in why and "worst label kids (F1 0.1250)" in why, why
    else:
        assert why is None


def test_degraded_without_a_supported_label_says_so():
    assert RULE.why(20, 0.0, None, None).endswith("no label has support, on 20 feedback rows")


def test_the_object_has_the_contract_keys_and_round_trips_through_json():
    quality = hand_made(DegradedRule(min_rows=5, floor=0.5, margin=0.1))
    data = json.loads(json.dumps(quality.to_json()))
    assert set(data) == CONTRACT_KEYS
    assert LiveQuality.from_json(data) == quality
    assert LiveQuality.from_json({**data, "added_by_a_later_release": 1}) == quality
    assert set(data["per_label"]["a"]) == {"precision", "recall", "f1", "support"}


def test_the_log_line_has_every_key_but_per_label_and_the_worst_label():
    fields = hand_made().log_fields()
    assert set(fields) == CONTRACT_KEYS - {"per_label"} | {"worst_label", "worst_label_f1"}
    assert (fields["worst_label"], fields["worst_label_f1"]) == ("c", 0.0)
    assert json.loads(json.dumps(fields))["degraded"] is False  # what the alert filter matches (a JSON boolean)


def test_the_object_name_sorts_by_the_runs_start():
    from datetime import UTC, datetime

    early = objects.live_quality(datetime(2026, 12, 6, 9, 0, 0, 5, tzinfo=UTC), "v2")
    late = objects.live_quality(datetime(2026, 12, 6, 10, 0, tzinfo=UTC), "v1")
    assert early == "monitoring/quality/20261206T090000.000005Z-v2.json"
    assert early < late and late.startswith(objects.LIVE_QUALITY_PREFIX)
    assert objects.LIVE_QUALITY_PREFIX.startswith(objects.MONITORING_PREFIX) == (
        objects.MONITORING_PREFIX == "monitoring/"
    )
