"""Label drift (saikika.core.drift): counts, their metadata form, the divergence on mixes whose answer is known by
hand, and the baseline a model carries."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from saikika.cloud.drift import _is_due
from saikika.core.drift import (
    BASELINE_PREDICTED,
    BASELINE_SUPPORT,
    DEFAULT_MIN_ITEMS,
    METADATA_KEY,
    METADATA_MAX_BYTES,
    NONE,
    OTHER,
    LabelCounts,
    LabelDrift,
    baseline_of,
    js_divergence,
    label_drift,
    predicted_shares,
    too_few_items,
)

WHEN = "2026-12-06T12:00:00+00:00"


def drift(counts: LabelCounts, baseline: dict[str, float], bound: float = 0.1, min_items: int = 1) -> LabelDrift:
    """The divergence arithmetic alone: any number of items may be judged (the rule on too few is tested below)."""
    return label_drift(counts, baseline, bound, day="2026-12-06", computed_at=WHEN, min_items=min_items)


def test_counts_are_per_item_and_an_item_without_labels_counts_as_none():
    counts = LabelCounts.of([["a"], ["a", "b"], [], ["b"]])
    assert (counts.items, counts.none, counts.labels) == (4, 1, {"a": 2, "b": 2})
    counts.merge(LabelCounts.of([["c"], []]))
    assert (counts.items, counts.none, counts.labels) == (6, 2, {"a": 2, "b": 2, "c": 1})


def test_the_same_mix_as_the_baseline_has_no_divergence():
    result = drift(LabelCounts.of([["a"], ["a", "b"], [], ["b"]]), {"a": 0.5, "b": 0.5, NONE: 0.25})
    assert result.divergence == 0.0
    assert not result.above_bound
    assert result.label_shares == {NONE: 0.25, "a": 0.5, "b": 0.5}
    assert result.no_label_share == 0.25
    assert result.items == 4


def test_nothing_in_common_is_a_divergence_of_one():
    result = drift(LabelCounts.of([["a"], ["a"]]), {"b": 1.0, NONE: 0.0})
    assert result.divergence == 1.0
    assert result.above_bound


def test_a_divergence_computed_by_hand():
    # Observed mix over ((none), a) = (0, 1); baseline (0.5, 0.5); M = (0.25, 0.75).
    # KL(P‖M) = log2(1/0.75); KL(Q‖M) = 0.5·log2(0.5/0.25) + 0.5·log2(0.5/0.75); JSD = their mean.
    expected = (math.log2(1 / 0.75) + 0.5 * math.log2(2) + 0.5 * math.log2(0.5 / 0.75)) / 2
    assert expected == pytest.approx(0.311278, abs=1e-6)
    result = drift(LabelCounts.of([["a"], ["a"]]), {"a": 0.5, NONE: 0.5}, bound=0.3)
    assert result.divergence == pytest.approx(expected, abs=1e-6)
    assert result.above_bound
    assert not drift(LabelCounts.of([["a"], ["a"]]), {"a": 0.5, NONE: 0.5}, bound=0.32).above_bound
    assert js_divergence(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(expected)


def test_empty_titles_move_the_none_slot_most():
    # 10 items, 8 with no label: (none) 0.8 vs 0.1 in the baseline is the largest move.
    counts = LabelCounts.of([[]] * 8 + [["kids"], ["portable"]])
    result = drift(counts, {"kids": 0.5, "portable": 0.4, NONE: 0.1})
    assert result.moved[0] == {"label": NONE, "share": 0.8, "baseline": 0.1, "change": 0.7}
    assert [m["label"] for m in result.moved] == [NONE, "kids", "portable"]
    assert result.log_fields()["moved_label"] == NONE
    assert result.log_fields()["moved_change"] == 0.7
    assert result.above_bound


def test_moved_names_at_most_five_labels_largest_change_first():
    counts = LabelCounts.of([[f"l{i}"] for i in range(10)])
    result = drift(counts, {f"l{i}": 0.1 * (i % 2) * 2 for i in range(10)})
    assert len(result.moved) == 5
    changes = [abs(m["change"]) for m in result.moved]
    assert changes == sorted(changes, reverse=True)


def test_too_few_items_are_shown_but_never_judged_above_the_bound():
    # What a person saw on a fresh stack: six test requests, all one label, against a mix of several.
    baseline = {"waterproof": 0.2, "kids": 0.3, "portable": 0.3, NONE: 0.2}
    six = label_drift(LabelCounts.of([["waterproof"]] * 6), baseline, 0.1, day="2026-12-06", computed_at=WHEN)
    assert six.min_items == DEFAULT_MIN_ITEMS == 100
    assert six.divergence > 0.1 and not six.above_bound and too_few_items(six.to_json())
    assert six.log_fields()["min_items"] == 100
    for items, judged in ((99, False), (100, True)):
        skewed = drift(LabelCounts.of([["waterproof"]] * items), baseline, min_items=100)
        assert (skewed.above_bound, too_few_items(skewed.to_json())) == (judged, not judged)
    # A drift object written before the rule was kept reads as judged from one item, as it was.
    older = {k: v for k, v in six.to_json().items() if k != "min_items"}
    assert LabelDrift.from_json(older).min_items == 1 and not too_few_items(older)


def test_no_items_is_no_divergence():
    result = drift(LabelCounts(), {"a": 1.0})
    assert (result.items, result.divergence, result.above_bound, result.moved) == (0, 0.0, False, [])


def test_metadata_round_trips_compactly():
    counts = LabelCounts.of([["kids"], ["kids", "防水"], []])
    text = counts.to_metadata()
    assert " " not in text and "防水" in text
    assert json.loads(text) == {"items": 3, "none": 1, "labels": {"kids": 2, "防水": 1}}
    assert LabelCounts.from_metadata(text) == counts


def test_an_objects_metadata_carries_the_counts_or_none_readable():
    counts = LabelCounts.of([["kids"], []])
    assert counts.object_metadata() == {METADATA_KEY: counts.to_metadata()}
    assert LabelCounts.of_object({"read": "3", **counts.object_metadata()}) == counts
    # Written before counts were kept, or by hand: no counts, never an error.
    for metadata in (None, {}, {"read": "3"}, {METADATA_KEY: "not json"}, {METADATA_KEY: '{"labels": {}}'}):
        assert LabelCounts.of_object(metadata) is None


def test_metadata_is_capped_and_keeps_the_most_frequent_labels():
    # 2,000 labels of 40 characters would be ~100 KB: far over Cloud Storage's 8 KiB of custom metadata.
    counts = LabelCounts.of([[f"label-{i:04d}-" + "x" * 29] * 1 for i in range(2000) for _ in range(1 + i % 3)])
    text = counts.to_metadata()
    assert len(text.encode("utf-8")) <= METADATA_MAX_BYTES
    capped = LabelCounts.from_metadata(text)
    assert capped.items == counts.items and capped.none == counts.none
    assert sum(capped.labels.values()) + capped.other == sum(counts.labels.values())
    assert capped.other > 0 and len(capped.labels) > 50
    assert min(capped.labels.values()) >= max(c for label, c in counts.labels.items() if label not in capped.labels)


def test_overflowed_labels_are_compared_as_one_slot():
    counts = LabelCounts(items=4, none=0, labels={"a": 2}, other=2)
    result = drift(counts, {"a": 0.5, "b": 0.25, "c": 0.25, NONE: 0.0})
    assert result.label_shares[OTHER] == 0.5
    assert result.divergence == 0.0


@pytest.mark.parametrize(
    "text", ["", "[]", '{"none": 1}', '{"items": -1}', '{"items": "3"}', '{"items": 1, "labels": {"a": 1.5}}']
)
def test_metadata_that_is_not_counts_is_refused(text):
    with pytest.raises(ValueError):
        LabelCounts.from_metadata(text)


label_names = st.text(min_size=1, max_size=12)


@given(st.lists(st.lists(label_names, max_size=4), max_size=40))
def test_metadata_round_trip(label_lists):
    counts = LabelCounts.of(label_lists)
    assert LabelCounts.from_metadata(counts.to_metadata()) == counts


@given(st.lists(st.lists(label_names, max_size=3), max_size=30), st.integers(min_value=40, max_value=400))
def test_any_cap_keeps_every_count(label_lists, cap):
    counts = LabelCounts.of(label_lists)
    capped = LabelCounts.from_metadata(counts.to_metadata(max_bytes=cap))
    assert (capped.items, capped.none) == (counts.items, counts.none)
    assert sum(capped.labels.values()) + capped.other == sum(counts.labels.values())


def test_drift_round_trips_through_json():
    result = drift(LabelCounts.of([[], ["a"]]), {"a": 1.0})
    assert LabelDrift.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert set(result.to_json()) >= {
        "day",
        "source",
        "run_id",
        "champion_version",
        "items",
        "objects",
        "no_label_share",
        "label_shares",
        "baseline_shares",
        "divergence",
        "bound",
        "above_bound",
        "moved",
        "computed_at",
    }


def test_predicted_shares_are_the_baseline_training_writes():
    predicted = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    assert predicted_shares(predicted, ["a", "b"]) == {"a": 0.5, "b": 0.5, NONE: 0.25}


def test_a_model_without_label_shares_falls_back_to_training_support():
    metadata = {"tuning_rows": 10, "metrics": {"per_label": {"a": {"support": 6}, "b": {"support": 2}}}}
    assert baseline_of(metadata) == ({"a": 0.6, "b": 0.2}, BASELINE_SUPPORT)
    assert baseline_of({**metadata, "label_shares": {"a": 0.5, NONE: 0.5}}) == (
        {"a": 0.5, NONE: 0.5},
        BASELINE_PREDICTED,
    )


def test_training_writes_the_baseline_into_the_metadata(model_files):
    shares = model_files.metadata["label_shares"]
    assert set(shares) == {*model_files.metadata["labels"], NONE}
    assert all(0 <= share <= 1 for share in shares.values())
    # Every tuning item either carries a label or counts as (none): the shares cover all of them at least once.
    assert sum(shares.values()) >= 1 - 1e-6
    assert baseline_of(model_files.metadata) == (shares, BASELINE_PREDICTED)


MIDNIGHT = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "last, now, closed_since, due",
    [
        (None, MIDNIGHT + timedelta(hours=1), None, True),  # today, never computed
        (MIDNIGHT + timedelta(hours=1), MIDNIGHT + timedelta(hours=1, minutes=14), None, False),  # within 900 s
        (MIDNIGHT + timedelta(hours=1), MIDNIGHT + timedelta(hours=1, minutes=15), None, True),  # the interval passed
        (
            MIDNIGHT - timedelta(minutes=5),
            MIDNIGHT + timedelta(minutes=1),
            MIDNIGHT,
            True,
        ),  # yesterday, before it closed
        (MIDNIGHT + timedelta(minutes=1), MIDNIGHT + timedelta(hours=9), MIDNIGHT, False),  # yesterday, done once after
        (None, MIDNIGHT + timedelta(hours=9), MIDNIGHT, True),  # yesterday, never computed
    ],
)
def test_today_is_due_every_interval_and_yesterday_once_after_it_closed(last, now, closed_since, due):
    assert _is_due(last, now, closed_since, 900.0) is due
