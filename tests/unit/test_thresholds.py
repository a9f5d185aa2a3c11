import numpy as np

from saikika.core.metrics import label_metrics, top1_accuracy
from saikika.model.thresholds import DEFAULT_THRESHOLD, MIN_THRESHOLD, tune_thresholds


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


def test_a_few_mislabeled_positives_do_not_pull_the_threshold_down_to_where_they_scored():
    """The finding on the synthetic catalogue: 2% of its labels are flipped, the flipped positives score near
    nothing, and the best-F1 cut went down to them (kids 0.0018): any text unlike the catalogue crossed it."""
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.6, 1.0, 200)
    flipped = np.array([0.004, 0.003])
    negatives = rng.uniform(0.0, 0.002, 800)
    scores = np.r_[clean, flipped, negatives][:, None]
    truth = np.r_[np.ones(202), np.zeros(800)][:, None].astype(int)
    [old] = tune_thresholds(scores, truth, min_threshold=0.0)
    [new] = tune_thresholds(scores, truth)
    assert old < 0.004  # what the best F1 alone does
    assert clean.min() > new > 0.2  # the clean positives keep their label; the floor is the base rate, 0.2


def test_the_threshold_sits_inside_the_gap_not_at_its_edge():
    scores = np.r_[0.95, 0.9, 0.7, 0.3, np.full(16, 0.1)][:, None]
    truth = np.r_[1, 1, 1, np.zeros(17)][:, None].astype(int)
    [t] = tune_thresholds(scores, truth)
    assert t == (0.7 + 0.3) / 2


def test_no_threshold_is_below_the_floor_or_the_labels_base_rate():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 0.04, (500, 3))
    truth = (rng.uniform(size=(500, 3)) < [0.01, 0.3, 0.6]).astype(int)
    thresholds = tune_thresholds(scores, truth)
    assert (thresholds >= MIN_THRESHOLD).all()
    assert (thresholds >= truth.mean(axis=0)).all()
    # A model whose every score is tiny labels nothing, however the tuning split ranks them.
    assert not (scores >= thresholds).any()


def test_the_best_cut_is_taken_above_the_floor_not_clipped_up_to_it():
    # Negatives at 0.25 sit above the floor (0.2): clipping the all-scores cut (down at the mislabeled 0.004) up
    # to the floor would label them; the best cut above the floor is between them and the positives.
    scores = np.r_[np.full(99, 0.9), 0.004, np.full(20, 0.25), np.full(380, 0.001)][:, None]
    truth = np.r_[np.ones(100), np.zeros(400)][:, None].astype(int)
    [t] = tune_thresholds(scores, truth)
    assert t == (0.9 + 0.25) / 2
