import numpy as np

from saikika.core.metrics import label_metrics, top1_accuracy
from saikika.model.thresholds import DEFAULT_THRESHOLD, tune_thresholds


def test_threshold_separates_perfectly_separable_scores():
    scores = np.array([[0.9], [0.8], [0.3], [0.2]])
    truth = np.array([[1], [1], [0], [0]])
    [t] = tune_thresholds(scores, truth)
    assert 0.3 < t <= 0.8
    assert ((scores[:, 0] >= t) == truth[:, 0].astype(bool)).all()


def test_label_without_positives_keeps_default():
    scores = np.array([[0.9, 0.1], [0.2, 0.3]])
    truth = np.array([[1, 0], [0, 0]])
    assert tune_thresholds(scores, truth)[1] == DEFAULT_THRESHOLD


def test_ties_are_not_split():
    scores = np.array([[0.5], [0.5], [0.1]])
    truth = np.array([[1], [0], [0]])
    [t] = tune_thresholds(scores, truth)
    assert t <= 0.5  # both tied rows pass together: a threshold cannot tell them apart


def test_metrics_by_hand():
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    predicted = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    m = label_metrics(truth, predicted, ["a", "b"])
    assert m["per_label"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_label"]["b"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["micro_f1"] == 2 * 3 / (2 * 3 + 1 + 1)
    assert m["macro_f1"] == 0.75


def test_top1_ignores_rows_without_labels():
    scores = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.4]])
    truth = np.array([[1, 0], [1, 0], [0, 0]])
    assert top1_accuracy(scores, truth) == 0.5
