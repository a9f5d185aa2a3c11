"""Training: the fitted pipeline, its thresholds and metrics, and the files of a new version.

Character n-grams need no word segmenter, so Japanese and English text work alike. Hashed features
keep no vocabulary: the saved model loads in tens of milliseconds, where a TF-IDF vocabulary of this
size takes over a second with skops. The n-grams are counted by `saikika.model.featuriser`, the code the
predictors run, wrapped here as a scikit-learn transformer.
"""

from __future__ import annotations

import io
import os
import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from importlib.metadata import version
from itertools import islice

import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

import saikika
from saikika.core import splits
from saikika.core.drift import predicted_shares
from saikika.core.errors import ModelIntegrityError, TrainingDataError
from saikika.core.items import Item
from saikika.core.metrics import above_thresholds, binarize, evaluate_scores
from saikika.core.objects import INFERENCE_FILE, MODEL_FILE
from saikika.model import inference_artifact, pipeline_file
from saikika.model.artifact import ModelFiles, new_version_id, sha256_hex
from saikika.model.ngram_transformer import HashedCharNgrams, TitleWordVectors
from saikika.model.thresholds import tune_thresholds
from saikika.model.word_vectors import WordVectors

MIN_LABEL_EXAMPLES = 3
SEED = 0
# Both fits (in memory and streamed) run averaged SGD for a fixed number of passes over the data: enough sample
# updates for the average to settle (livedoor's 5,000 fit rows get 10 epochs), at least 2 however many rows.
# Fixed, not a tolerance: the same rows always give the same model, and the cost is known in advance.
STREAM_UPDATES = 60_000
STREAM_MAX_EPOCHS = 10
STREAM_MIN_EPOCHS = 2
# With title word vectors, the regularisation that maximised the mean livedoor `dev` top-1 of full text and titles
# (bench/titles_study.py; 1e-6: 0.9274, 2e-6: 0.9305, 4e-6: 0.9298, 8e-6: 0.9260): the dense columns are few and
# carry much, and 1e-6 lets them overfit the titles.
WORD_VECTORS_ALPHA = 2e-6
# Rows a streamed fit reads at a time: one batch's features are what a streamed fit holds in memory.
STREAM_BATCH_ROWS = 5_000
# Texts featurised at a time (bounds the featuriser's temporary arrays; progress is reported per chunk).
_FEATURISE_CHUNK = 5_000

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainingConfig:
    """What a training run may vary. The defaults were chosen on the livedoor `dev` split (bench/tune_livedoor.py)."""

    ngram_range: tuple[int, int] = (1, 3)
    bits: int = 18
    alpha: float = 1e-6
    # Pretrained vectors of the title's words (`saikika.model.word_vectors`) beside the n-grams, or None.
    word_vectors: WordVectors | None = field(default=None, compare=False, repr=False)

    @classmethod
    def with_word_vectors(cls, vectors: WordVectors) -> TrainingConfig:
        """The configuration a run with title word vectors uses (the vectors' alpha, the default n-grams)."""
        return cls(alpha=WORD_VECTORS_ALPHA, word_vectors=vectors)

    def to_json(self) -> dict:
        out = {"ngram_range": list(self.ngram_range), "bits": self.bits, "alpha": self.alpha}
        if self.word_vectors is not None:
            out["word_vectors"] = {
                "words": int(self.word_vectors.hashes.shape[0]),
                "dimensions": self.word_vectors.dimensions,
                "weight": self.word_vectors.weight,
            }
        return out

    def featuriser(self) -> HashedCharNgrams:
        """The featuriser a fit with this configuration counts with."""
        return HashedCharNgrams(self.ngram_range, self.bits)

    def word_features(self) -> TitleWordVectors | None:
        """The title word-vector transformer a fit with this configuration appends, if any."""
        return None if self.word_vectors is None else TitleWordVectors.of(self.word_vectors)


DEFAULT_CONFIG = TrainingConfig()


@dataclass(frozen=True)
class LabelPolicy:
    """Which labels a run trains: at most `max_labels`, the best supported first; a label the current champion
    does not know needs `new_label_min_support` examples, one it knows MIN_LABEL_EXAMPLES (what a fit needs)."""

    max_labels: int = 256
    new_label_min_support: int = MIN_LABEL_EXAMPLES
    known: frozenset[str] = frozenset()

    def choose(self, counts: Counter) -> tuple[list[str], dict[str, str]]:
        """(labels to train, sorted; label → why it was left out). Never fails on the number of labels."""
        dropped: dict[str, str] = {}
        eligible = []
        for label, n in counts.items():
            needed = MIN_LABEL_EXAMPLES if label in self.known else self.new_label_examples()
            if n >= needed:
                eligible.append(label)
            else:
                new = "" if label in self.known else "new label: "
                dropped[label] = f"{new}{n} example(s), fewer than {needed}"
        ranked = sorted(eligible, key=lambda label: (-counts[label], label))
        for rank, label in enumerate(ranked[self.max_labels :], start=self.max_labels + 1):
            dropped[label] = f"support {counts[label]} ranks {rank}: beyond SAIKIKA_MAX_LABELS={self.max_labels}"
        return sorted(ranked[: self.max_labels]), dict(sorted(dropped.items()))

    def new_label_examples(self) -> int:
        """What a label the champion does not know needs: the setting, and never less than a fit needs."""
        return max(MIN_LABEL_EXAMPLES, self.new_label_min_support)


DEFAULT_POLICY = LabelPolicy()


def _binary_model(alpha: float, epochs: int) -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=alpha, average=True, max_iter=epochs, tol=None, random_state=SEED)


def _threads():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1)


def _per_label(fit: Callable[[int], SGDClassifier | None], labels: int) -> list:
    # One binary model per label; SGD's inner loop releases the GIL, so threads use every core (no worker
    # processes to start, no copy of the data).
    with _threads() as pool:
        return list(pool.map(fit, range(labels)))


@dataclass
class TrainedModel:
    pipeline: Pipeline
    labels: list[str]
    thresholds: np.ndarray
    metrics: dict
    rows_used: int
    tuning_rows: int
    labels_dropped: dict[str, str] = field(default_factory=dict)
    # The tuning split's scores and truth behind `metrics`, for reports; not saved with the model.
    tuning_scores: np.ndarray | None = None
    tuning_truth: np.ndarray | None = None
    # Texts on which an exported inference artifact must reproduce the pipeline's scores.
    check_texts: list[str] = field(default_factory=list)
    config: TrainingConfig = DEFAULT_CONFIG


def _featurise(
    featuriser: HashedCharNgrams, words: TitleWordVectors | None, texts: list[str], progress: Progress | None
) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """(n-gram counts, title word vectors or None) of `texts`."""
    starts = range(0, len(texts), _FEATURISE_CHUNK)
    counts, dense = [], []

    def chunk(start: int) -> tuple[sp.csr_matrix, np.ndarray | None]:
        part = texts[start : start + _FEATURISE_CHUNK]
        return featuriser.transform(part), None if words is None else words.transform(part)

    # The featurisers' array operations release the GIL: chunks counted on threads use every core.
    with _threads() as pool:
        for start, (part, vectors) in zip(starts, pool.map(chunk, starts)):
            counts.append(part)
            dense.append(vectors)
            if progress:
                progress("featurise", min(start + _FEATURISE_CHUNK, len(texts)), len(texts))
    return (
        sp.vstack(counts, format="csr") if len(counts) > 1 else counts[0],
        None if words is None else np.vstack(dense),
    )


def _model_rows(counts: sp.csr_matrix, tfidf: TfidfTransformer, dense: np.ndarray | None) -> sp.csr_matrix:
    """What the classifier reads: the TF-IDF rows, then any title word-vector columns."""
    rows = _tfidf(counts, tfidf)
    return rows if dense is None else sp.hstack([rows, sp.csr_matrix(dense)], format="csr")


def _pipeline(
    featuriser: HashedCharNgrams,
    tfidf: TfidfTransformer,
    words: TitleWordVectors | None,
    classifier: OneVsRestClassifier,
) -> Pipeline:
    if words is None:
        return Pipeline([("hash", featuriser), ("tfidf", tfidf), ("classify", classifier)])
    ngrams = Pipeline([("hash", featuriser), ("tfidf", tfidf)])
    return Pipeline([("features", FeatureUnion([("ngrams", ngrams), ("words", words)])), ("classify", classifier)])


def pipeline_parts(pipeline: Pipeline) -> tuple[object, TfidfTransformer, TitleWordVectors | None, OneVsRestClassifier]:
    """(featuriser, TF-IDF, title word vectors or None, classifier) of a pipeline `_pipeline` built."""
    if "features" in pipeline.named_steps:
        union = dict(pipeline.named_steps["features"].transformer_list)
        ngrams = union["ngrams"].named_steps
        return ngrams["hash"], ngrams["tfidf"], union["words"], pipeline.named_steps["classify"]
    steps = pipeline.named_steps
    return steps["hash"], steps["tfidf"], None, steps["classify"]


def _round_to_float32(tfidf: TfidfTransformer, classifier: OneVsRestClassifier) -> None:
    """Give the pipeline the float32 numbers the inference artifact stores: the IDF, and each coefficient × IDF
    (the artifact's `feature_rows`); the pipeline's coefficients become those weights ÷ IDF in float64, so the two
    differ only by float64 arithmetic (halves the artifact; the effect on scores is measured by the quality test)."""
    idf = tfidf.idf_.astype(np.float32).astype(np.float64)
    tfidf.idf_ = idf
    width = idf.shape[0]  # any columns beyond are title word vectors, stored as they are
    for estimator in classifier.estimators_:
        coef = estimator.coef_.astype(np.float32).astype(np.float64)
        coef[:, :width] = (estimator.coef_[:, :width] * idf).astype(np.float32).astype(np.float64) / idf
        estimator.coef_ = coef


# Non-zeros given TF-IDF at a time, each block on the thread pool (numpy releases the GIL): 8 MB of float64.
_TFIDF_BLOCK = 1 << 20


def _tfidf(counts: sp.csr_matrix, tfidf: TfidfTransformer) -> sp.csr_matrix:
    """`tfidf.transform(counts)` (sublinear tf, idf, l2 rows) in a few in-place array operations on the CSR arrays,
    blocks of rows on threads: a fifth of the time on 100k rows, and the same numbers (a unit test compares the
    two). Every fit, in memory or streamed, computes its TF-IDF here."""
    indptr, idf = counts.indptr, tfidf.idf_
    values = np.empty(counts.data.shape[0])
    rows = indptr.shape[0] - 1
    # Blocks of whole rows, about _TFIDF_BLOCK non-zeros each (a longer row is a block of its own).
    firsts = np.unique(np.searchsorted(indptr, np.arange(0, values.shape[0], _TFIDF_BLOCK), side="right") - 1)
    bounds = list(zip(firsts.tolist(), [*firsts[1:].tolist(), rows]))

    def block(first: int, last: int) -> None:
        begin, end = int(indptr[first]), int(indptr[last])
        part = values[begin:end]
        np.log(counts.data[begin:end], out=part)
        part += 1.0
        part *= idf[counts.indices[begin:end]]
        lengths = np.diff(indptr[first : last + 1])
        filled = lengths > 0
        norms = np.ones(last - first)
        if filled.any():
            norms[filled] = np.sqrt(np.add.reduceat(part * part, indptr[first:last][filled] - begin))
        part /= np.repeat(norms, lengths)

    if len(bounds) > 1:
        with _threads() as pool:
            list(pool.map(lambda bound: block(*bound), bounds))
    elif rows:
        block(0, rows)
    return sp.csr_matrix((values, counts.indices, indptr), shape=counts.shape)


def _fit(
    counts: sp.csr_matrix, dense: np.ndarray | None, y: np.ndarray, alpha: float
) -> tuple[TfidfTransformer, OneVsRestClassifier]:
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    features = _model_rows(counts, tfidf, dense)
    epochs = stream_epochs(counts.shape[0])

    def fit(j: int) -> SGDClassifier:
        model = _binary_model(alpha, epochs)
        if np.unique(y[:, j]).shape[0] == 2:
            return model.fit(features, y[:, j])
        # A label without positives (or negatives) among these rows: a constant model, as OneVsRest would give.
        return model.partial_fit(features, y[:, j], classes=[0, 1])

    return tfidf, _ovr(_per_label(fit, y.shape[1]), y.shape[1])


def _labels(counts: Counter, policy: LabelPolicy, rows: int) -> tuple[list[str], dict[str, str]]:
    labels, dropped = policy.choose(counts)
    if len(labels) < 2:
        raise TrainingDataError(
            f"need at least 2 labels with enough examples (a label the champion does not know needs "
            f"{policy.new_label_examples()} examples, SAIKIKA_NEW_LABEL_MIN_SUPPORT={policy.new_label_min_support}; "
            f"one it knows needs {MIN_LABEL_EXAMPLES}), found {len(labels)} among {rows} rows"
        )
    return labels, dropped


def train(
    items: Sequence[Item],
    progress: Progress | None = None,
    config: TrainingConfig = DEFAULT_CONFIG,
    policy: LabelPolicy = DEFAULT_POLICY,
) -> TrainedModel:
    """In memory: fit on all but the tuning split, tune thresholds and measure on it, then refit on all rows."""
    counts = Counter(label for item in items for label in (item.labels or ()))
    labels, dropped = _labels(counts, policy, len(items))
    y = binarize(items, labels)
    held = np.array([splits.in_tuning_split(item.id) for item in items])
    if held.all() or not held.any():
        raise TrainingDataError(f"{len(items)} rows are too few to hold some out for thresholds and metrics")

    featuriser, words = config.featuriser(), config.word_features()
    matrix, dense = _featurise(featuriser, words, [item.text() for item in items], progress)
    if progress:
        progress("fit", 0, 2)
    tfidf, classifier = _fit(matrix[~held], None if dense is None else dense[~held], y[~held], config.alpha)
    tuning_scores = classifier.predict_proba(_model_rows(matrix[held], tfidf, None if dense is None else dense[held]))
    thresholds = tune_thresholds(tuning_scores, y[held])
    metrics = evaluate_scores(tuning_scores, y[held], thresholds, labels)
    if progress:
        progress("fit", 1, 2)
    tfidf, classifier = _fit(matrix, dense, y, config.alpha)
    _round_to_float32(tfidf, classifier)
    if progress:
        progress("fit", 2, 2)
    pipeline = _pipeline(featuriser, tfidf, words, classifier)
    return TrainedModel(
        pipeline=pipeline,
        labels=labels,
        thresholds=thresholds,
        metrics=metrics,
        rows_used=len(items),
        tuning_rows=int(held.sum()),
        labels_dropped=dropped,
        tuning_scores=tuning_scores,
        tuning_truth=y[held],
        check_texts=[item.text() for item, h in zip(items, held) if h][:500],
        config=config,
    )


class TrainingMode(StrEnum):
    """How a run trained; the values are written to metadata.json and run records as `training_mode`."""

    IN_MEMORY = "in memory"
    STREAMED = "streamed"


@dataclass(frozen=True)
class TrainingResult:
    model: TrainedModel
    mode: TrainingMode


def train_from(
    items: Sequence[Item] | Callable[[], Iterable[Item]],
    in_memory_rows: int,
    *,
    rows: int | None = None,
    min_rows: int = 0,
    progress: Progress | None = None,
    config: TrainingConfig = DEFAULT_CONFIG,
    policy: LabelPolicy = DEFAULT_POLICY,
) -> TrainingResult:
    """The one way in: rows, or `items()` that reads them again for every pass. Up to `in_memory_rows` rows train in
    memory; more are streamed in batches of STREAM_BATCH_ROWS, in bounded memory. `rows`, when the caller knows how
    many there are, decides without reading ahead; else up to `in_memory_rows` + 1 rows are read to find out. Fewer
    than `min_rows` rows raise TrainingDataError."""
    stream = (lambda: items) if isinstance(items, Sequence) else items
    if rows is None:
        head = list(islice(stream(), in_memory_rows + 1))
        in_memory = len(head) <= in_memory_rows
    else:
        in_memory = rows <= in_memory_rows
        head = list(stream()) if in_memory else []
    if in_memory:
        require_rows(len(head), min_rows)
        return TrainingResult(train(head, progress, config, policy), TrainingMode.IN_MEMORY)
    del head  # the stream reads them again, batch by batch
    trained = train_streaming(lambda: batches(stream(), STREAM_BATCH_ROWS), progress, config, policy, min_rows)
    return TrainingResult(trained, TrainingMode.STREAMED)


def batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """`items` in lists of `size` (the last one shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def require_rows(rows: int, min_rows: int) -> None:
    if rows < min_rows:
        raise TrainingDataError(f"{rows} valid rows, fewer than SAIKIKA_RETRAIN_MIN_ROWS={min_rows}")


def _ovr(estimators: list[SGDClassifier], labels: int) -> OneVsRestClassifier:
    """A fitted one-vs-rest classifier from per-label binary models (what `export_inference` and skops read)."""
    from sklearn.preprocessing import LabelBinarizer

    classifier = OneVsRestClassifier(estimators[0])
    classifier.estimators_ = estimators
    classifier.label_binarizer_ = LabelBinarizer(sparse_output=True).fit(np.eye(labels, dtype=int))
    return classifier


def stream_epochs(fit_rows: int) -> int:
    return int(min(STREAM_MAX_EPOCHS, max(STREAM_MIN_EPOCHS, -(-STREAM_UPDATES // max(1, fit_rows)))))


def train_streaming(
    batches: Callable[[], Iterable[Sequence[Item]]],
    progress: Progress | None = None,
    config: TrainingConfig = DEFAULT_CONFIG,
    policy: LabelPolicy = DEFAULT_POLICY,
    min_rows: int = 0,
) -> TrainedModel:
    """Out of core: `batches()` streams the rows again for every pass, in the same order. Memory holds one batch's
    features and the per-label weights, never the data. One counting pass (labels, document frequencies), then
    averaged SGD (`partial_fit`) for a few epochs on all but the tuning split, then the same on all rows; the first
    model's tuning-split scores (thresholds, metrics) are taken during the second fit's first pass. Document
    frequencies come from all rows (an unsupervised statistic), the one difference from the in-memory fit."""
    stream = _Stream(batches, config.featuriser(), config.word_features(), progress)
    tally = stream.count(1 << config.bits)
    require_rows(tally.rows, min_rows)
    labels, dropped = _labels(tally.labels, policy, tally.rows)
    if tally.tuning_rows in (0, tally.rows):
        raise TrainingDataError(f"{tally.rows} rows are too few to hold some out for thresholds and metrics")
    tfidf = tally.tfidf()
    first = [_binary_model(config.alpha, 1) for _ in labels]
    stream.fit(first, tfidf, labels, lambda held: ~held, stream_epochs(tally.rows - tally.tuning_rows), "fit")
    tuning = _TuningScores(first)
    final = [_binary_model(config.alpha, 1) for _ in labels]
    stream.fit(final, tfidf, labels, lambda held: np.ones(len(held), bool), stream_epochs(tally.rows), "refit", tuning)
    scores, truth = np.vstack(tuning.scores), np.vstack(tuning.truth)
    thresholds = tune_thresholds(scores, truth)
    _drop_averaging_state(final)
    classifier = _ovr(final, len(labels))
    _round_to_float32(tfidf, classifier)
    return TrainedModel(
        pipeline=_pipeline(stream.featuriser, tfidf, stream.words, classifier),
        labels=labels,
        thresholds=thresholds,
        metrics=evaluate_scores(scores, truth, thresholds, labels),
        rows_used=tally.rows,
        tuning_rows=tally.tuning_rows,
        labels_dropped=dropped,
        tuning_scores=scores,
        tuning_truth=truth,
        check_texts=tuning.check_texts,
        config=config,
    )


@dataclass(frozen=True)
class _Tally:
    """What the counting pass over a stream finds: labels, document frequencies and row counts."""

    labels: Counter
    document_frequency: np.ndarray
    rows: int
    tuning_rows: int

    def tfidf(self) -> TfidfTransformer:
        """A TF-IDF with the IDF TfidfTransformer.fit (smooth_idf) would give on all the rows."""
        tfidf = TfidfTransformer(sublinear_tf=True)
        tfidf.idf_ = np.log((1 + self.rows) / (1 + self.document_frequency)) + 1.0
        tfidf.n_features_in_ = self.document_frequency.shape[0]
        return tfidf


class _TuningScores:
    """Collects the first model's scores on the tuning split, batch by batch, during the refit's first pass."""

    def __init__(self, models: list[SGDClassifier]):
        self.models = models
        self.scores: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []
        self.check_texts: list[str] = []

    def __call__(self, features: sp.csr_matrix, truth: np.ndarray, held: np.ndarray, batch: Sequence[Item]) -> None:
        if held.any():
            self.scores.append(np.column_stack([m.predict_proba(features[held])[:, 1] for m in self.models]))
            self.truth.append(truth[held])
            self.check_texts.extend(item.text() for item, h in zip(batch, held) if h and len(self.check_texts) < 500)


@dataclass
class _Stream:
    """The passes of a streamed fit over `batches()`, featurised as the predictors will."""

    batches: Callable[[], Iterable[Sequence[Item]]]
    featuriser: HashedCharNgrams
    words: TitleWordVectors | None
    progress: Progress | None
    rows: int = 0  # known once counted: the progress total of each later pass

    def count(self, width: int) -> _Tally:
        labels: Counter = Counter()
        document_frequency = np.zeros(width, np.int64)
        rows = tuning_rows = 0
        for batch in self.batches():
            labels.update(label for item in batch for label in (item.labels or ()))
            texts = [item.text() for item in batch]
            document_frequency += np.bincount(self.featuriser.transform(texts).indices, minlength=width)
            rows += len(batch)
            tuning_rows += sum(splits.in_tuning_split(item.id) for item in batch)
            if self.progress:
                self.progress("count", rows, 0)
        self.rows = rows
        return _Tally(labels, document_frequency, rows, tuning_rows)

    def fit(
        self,
        models: list[SGDClassifier],
        tfidf: TfidfTransformer,
        labels: list[str],
        fit_on: Callable[[np.ndarray], np.ndarray],
        epochs: int,
        stage: str,
        on_first_pass: Callable[[sp.csr_matrix, np.ndarray, np.ndarray, Sequence[Item]], None] | None = None,
    ) -> None:
        """`epochs` passes of `partial_fit` on the rows `fit_on(held)` selects, shuffled within each batch."""
        for epoch in range(epochs):
            seen = 0
            rng = np.random.default_rng(SEED + epoch)
            for batch in self.batches():
                texts = [item.text() for item in batch]
                words = None if self.words is None else self.words.transform(texts)
                features = _model_rows(self.featuriser.transform(texts), tfidf, words)
                truth = binarize(batch, labels)
                held = np.array([splits.in_tuning_split(item.id) for item in batch])
                if epoch == 0 and on_first_pass:
                    on_first_pass(features, truth, held, list(batch))
                selected = np.flatnonzero(fit_on(held))
                if len(selected):
                    selected = rng.permutation(selected)
                    _partial_fit(models, features[selected], truth[selected])
                seen += len(batch)
                if self.progress:
                    self.progress(f"{stage} epoch {epoch + 1}/{epochs}", seen, self.rows)


def _drop_averaging_state(models: list[SGDClassifier]) -> None:
    """Averaging's working arrays (four per label, each as large as the weights): coef_ and intercept_ already hold
    the averaged weights, and nothing fits these models again, so the saved pipeline does without them."""
    for model in models:
        for name in ("_average_coef", "_average_intercept", "_standard_coef", "_standard_intercept"):
            if hasattr(model, name):
                delattr(model, name)


def _partial_fit(models: list[SGDClassifier], features: sp.csr_matrix, truth: np.ndarray) -> None:
    _per_label(lambda j: models[j].partial_fit(features, truth[:, j], classes=[0, 1]), len(models))


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "saikika": saikika.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": version("skops"),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def serialize(trained: TrainedModel, extra: dict | None = None) -> ModelFiles:
    """A new version's files: the skops pipeline, the inference arrays (proven to give the pipeline's scores),
    and the metadata naming the sha256 of both."""
    data = pipeline_file.dump(trained.pipeline)
    digest = sha256_hex(data)
    now = datetime.now(UTC)
    arrays, inference_meta = _checked_inference(trained)
    metadata = {
        "version": new_version_id(digest, now),
        "created_at": now.isoformat(),
        "sha256": digest,
        "model_file": MODEL_FILE,
        "labels": trained.labels,
        "thresholds": {label: float(t) for label, t in zip(trained.labels, trained.thresholds)},
        "metrics": trained.metrics,
        **_label_shares(trained),
        "metrics_on": f"tuning split of {trained.tuning_rows} rows (stable by item id)",
        "rows_used": trained.rows_used,
        "tuning_rows": trained.tuning_rows,
        "labels_dropped": trained.labels_dropped,
        "training_config": trained.config.to_json(),
        "library_versions": library_versions(),
        "inference": inference_meta,
        **(extra or {}),
    }
    return ModelFiles(data, metadata, arrays)


def _label_shares(trained: TrainedModel) -> dict:
    """The drift baseline: the share of tuning-split items the model predicts each label for, and `(none)`."""
    if trained.tuning_scores is None:
        return {}
    return {
        "label_shares": predicted_shares(above_thresholds(trained.tuning_scores, trained.thresholds), trained.labels)
    }


def _checked_inference(trained: TrainedModel) -> tuple[bytes, dict]:
    """The inference arrays, refused unless they reproduce the pipeline's scores to MAX_SCORE_DIFFERENCE:
    predictors serve nothing else."""
    arrays, format = export_inference(trained.pipeline), inference_format(trained.pipeline)
    difference = max_difference(trained.pipeline, inference_artifact.load(arrays, format), trained.check_texts)
    if difference > inference_artifact.MAX_SCORE_DIFFERENCE:
        raise ModelIntegrityError(f"the inference artifact's scores differ from the pipeline's by {difference:.3g}")
    return arrays, {
        "file": INFERENCE_FILE,
        "format": format,
        "sha256": sha256_hex(arrays),
        "max_score_difference": difference,
        "checked_on_texts": len(trained.check_texts),
    }


def max_difference(pipeline: Pipeline, scorer, texts: list[str]) -> float:
    if not texts:
        return 0.0
    return float(np.max(np.abs(np.asarray(pipeline.predict_proba(texts)) - scorer(texts))))


def export_inference(pipeline: Pipeline) -> bytes:
    """The arrays of a fitted saikika pipeline as npz bytes: `inference_artifact.FORMAT` (n-grams only) or
    `FORMAT_WORDS` (with title word vectors)."""
    featuriser, tfidf, words, classifier = pipeline_parts(pipeline)
    exportable = (
        isinstance(featuriser, HashedCharNgrams)
        and tfidf.sublinear_tf
        and tfidf.norm == "l2"
        and tfidf.use_idf
        and all(isinstance(e, SGDClassifier) and e.loss == "log_loss" for e in classifier.estimators_)
    )
    if not exportable:
        raise ModelIntegrityError("the pipeline is not of the shape the inference artifact reproduces")
    buffer = io.BytesIO()
    idf = np.asarray(tfidf.idf_, dtype=np.float64)
    coef = np.vstack([e.coef_ for e in classifier.estimators_])
    width = idf.shape[0]
    extra = {}
    if words is not None:
        vectors = words.word_vectors()
        # (vector rows, labels): each vector's term in each label's decision (the model's word-vector columns folded in)
        terms = vectors.vectors.astype(np.float64) @ coef[:, width:].T
        extra = vectors.with_table(terms).to_arrays(inference_artifact.WORDS_PREFIX)
    np.savez(
        buffer,
        # (features, labels + 1): each label's coefficient × IDF, then the IDF
        feature_rows=np.column_stack([(coef[:, :width] * idf).T, idf]).astype(np.float32),
        intercept=np.concatenate([e.intercept_ for e in classifier.estimators_]).astype(np.float64),
        ngram_range=np.asarray(featuriser.ngram_range, dtype=np.int64),
        bits=np.asarray(featuriser.bits, dtype=np.int64),
        lowercase=np.asarray(bool(featuriser.lowercase)),
        **extra,
    )
    return buffer.getvalue()


def inference_format(pipeline: Pipeline) -> str:
    return inference_artifact.FORMAT if pipeline_parts(pipeline)[2] is None else inference_artifact.FORMAT_WORDS
