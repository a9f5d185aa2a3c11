"""Pure parts of the loop: the storage-event normaliser, the promotion rule, label-union evaluation,
and the trigger patterns that keep functions from reacting to their own writes."""

from __future__ import annotations

import base64
from datetime import UTC

import numpy as np
import pytest
from cloudevents.http import CloudEvent

from saikika.core import promotion, splits
from saikika.core.events import ObjectEvent, object_event
from saikika.core.items import Item
from saikika.model import catalogue, evaluation


def test_normalises_a_pubsub_wrapped_gcs_notification():
    event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/p/topics/bucket-events",
            "id": "1",
        },
        {
            "message": {
                "data": base64.b64encode(b'{"kind": "storage#object"}').decode(),
                "messageId": "1",
                "attributes": {
                    "eventType": "OBJECT_FINALIZE",
                    "bucketId": "data",
                    "objectId": "training/a.jsonl",
                    "objectGeneration": "1700000000000001",
                    "payloadFormat": "JSON_API_V1",
                },
            }
        },
    )
    assert object_event(event) == ObjectEvent("data", "training/a.jsonl", 1700000000000001, "OBJECT_FINALIZE")


def test_normalises_an_eventarc_finalized_event():
    event = CloudEvent(
        {
            "type": "google.cloud.storage.object.v1.finalized",
            "id": "2",
            "source": "//gcs.googleapis.com/projects/_/buckets/data",
            "subject": "objects/training/a.jsonl",
        },
        {"bucket": "data", "name": "training/a.jsonl", "generation": "1700000000000001", "kind": "storage#object"},
    )
    assert object_event(event) == ObjectEvent("data", "training/a.jsonl", 1700000000000001, "OBJECT_FINALIZE")


def test_a_plain_pubsub_message_is_not_an_object_event():
    event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "id": "3",
            "source": "//pubsub.googleapis.com/projects/p/topics/retrain-requests",
        },
        {"message": {"data": base64.b64encode(b'{"reason": "nightly"}').decode(), "messageId": "3"}},
    )
    assert object_event(event) is None


METRICS_A = {"micro_f1": 0.90, "per_label": {"x": {"f1": 0.9, "support": 5}, "y": {"f1": 0.8, "support": 5}}}


@pytest.mark.parametrize(
    "candidate, champion, has_champion, promote, reason",
    [
        (METRICS_A, None, False, True, "no usable champion"),
        (None, None, True, False, "no evaluation rows"),
        ({**METRICS_A, "micro_f1": 0.899}, METRICS_A, True, False, "below the champion"),
        (
            {"micro_f1": 0.95, "per_label": {"x": {"f1": 0.84, "support": 5}, "y": {"f1": 1.0, "support": 5}}},
            METRICS_A,
            True,
            False,
            "x 0.900→0.840",
        ),
        (
            {"micro_f1": 0.95, "per_label": {"x": {"f1": 0.86, "support": 5}, "y": {"f1": 1.0, "support": 5}}},
            METRICS_A,
            True,
            True,
            "micro F1 0.9500",
        ),
    ],
)
def test_promotion_rule(candidate, champion, has_champion, promote, reason):
    decided, why = promotion.decide(candidate, champion, 0.0, 0.05, has_champion=has_champion, shared_labels={"x", "y"})
    assert decided is promote
    assert reason in why


def test_tolerance_allows_a_small_drop():
    decided, _ = promotion.decide(
        {**METRICS_A, "micro_f1": 0.89}, METRICS_A, 0.02, 0.05, has_champion=True, shared_labels={"x", "y"}
    )
    assert decided


def test_union_evaluation_credits_a_learned_new_label(model_files):
    from saikika.model import pipeline_file

    loaded = pipeline_file.load(model_files.model, model_files.metadata)
    items = [
        Item(id="n1", title="限定品 腕時計", labels=("limited-edition",)),
        Item(id="n2", title="waterproof tent", labels=("waterproof",)),
    ]
    own = evaluation.evaluate(loaded, items)
    union = evaluation.evaluate(loaded, items, labels=sorted({*loaded.labels, "limited-edition"}))
    assert union["per_label"]["limited-edition"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert union["micro_f1"] < own["micro_f1"]


def test_clean_and_noisy_catalogues_are_aligned():
    noisy = list(catalogue.generate(500, seed=1))
    clean = list(catalogue.generate(500, seed=1, noise=0.0))
    assert [(a.id, a.title, a.description) for a in noisy] == [(b.id, b.title, b.description) for b in clean]
    differing = sum(a.labels != b.labels for a, b in zip(noisy, clean))
    assert 0 < differing < 60


def test_evaluation_slice_is_stable_and_about_a_tenth():
    share = np.mean([splits.in_evaluation_slice(f"i{i}") for i in range(20000)])
    assert 0.08 < share < 0.12
    assert splits.in_evaluation_slice("i1") == splits.in_evaluation_slice("i1")


def test_a_pending_markers_name_says_when_its_work_arrived_and_whether_it_is_forced():
    from datetime import datetime

    from saikika.core import objects

    when = datetime(2026, 11, 29, 8, 30, 1, 250000, tzinfo=UTC)
    data = objects.retrain_pending("training/feedback/dt=2026-11-29/7.jsonl", 17, when)
    assert data == objects.retrain_pending("training/feedback/dt=2026-11-29/7.jsonl", 17, when)  # redelivery: same
    assert data != objects.retrain_pending("training/feedback/dt=2026-11-29/7.jsonl", 18, when)
    assert objects.pending_work(data) == (when.timestamp(), False)
    assert objects.pending_work(objects.retrain_request("../x y", when)) == (when.timestamp(), True)
    assert objects.pending_work("retrain/pending/garbage.json") is None
