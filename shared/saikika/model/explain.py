"""Why this label: a served model's score for a label taken apart into what the item's text put into it.

The models are linear in their features, so the explanation is exact, not an estimate. For a label, the decision
(the logit of its score) is
- the intercept,
- plus, for each hashed character n-gram feature of the text, tf·weight / ‖tf·idf‖ (`FnvHashScorer.feature_terms`):
  a feature stands for the substrings that hash to it (almost always one), however often they occur,
- plus, for models with title word vectors (v4), each matched title word's `weight` × its row / the title's words.

`explain` returns the K features that pushed the label up the most, each named by its substring(s) of the
normalised text (lowercased, white space collapsed: what the model reads), the sum of all the other features'
terms, and the word terms; intercept + ngrams + ngrams_rest + words is the decision to float64 rounding, and its
sigmoid the served score. numpy only: the HTTP predictor, batch and `saikika explain` all call this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from saikika.core.items import Item
from saikika.model.inference_artifact import FnvHashScorer
from saikika.model.label_model import LabelModel

# The most substrings one request may ask for per label (HTTP `parameters.explain`).
EXPLAIN_MAX_K = 50


class NotExplainable(ValueError):
    """The model's format has no exact explanation (v1 models, scikit-learn pipelines): retrain to get one."""


@dataclass(frozen=True)
class Term:
    """One part of a label's decision: a feature's substrings (or a title word) and what it added."""

    text: str
    contribution: float
    occurrences: int = 1
    # Other substrings that hash to the same feature (rare): the contribution is theirs too.
    collisions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "contribution": self.contribution, "occurrences": self.occurrences}
        if self.collisions:
            out["collisions"] = list(self.collisions)
        return out


@dataclass(frozen=True)
class LabelExplanation:
    label: str
    score: float
    intercept: float
    ngrams: tuple[Term, ...]
    ngrams_rest: float
    words: tuple[Term, ...] = ()

    def decision(self) -> float:
        """The logit this explanation adds up to: the label's score is its sigmoid."""
        return self.intercept + sum(t.contribution for t in self.ngrams) + self.ngrams_rest + self.word_sum()

    def word_sum(self) -> float:
        return sum(t.contribution for t in self.words)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "score": self.score,
            "intercept": self.intercept,
            "ngrams": [term.to_json() for term in self.ngrams],
            "ngrams_rest": self.ngrams_rest,
        }
        if self.words:
            out["words"] = [term.to_json() for term in self.words]
        return out


def explain(model: LabelModel, item: Item, k: int, labels: list[str] | None = None) -> list[LabelExplanation]:
    """For each of `labels` (default: the labels the model predicts for the item), its K strongest n-gram terms."""
    scorer = model.scorer
    if not isinstance(scorer, FnvHashScorer):
        raise NotExplainable(f"model {model.version} ({type(scorer).__name__}) has no exact explanation; retrain it")
    if labels is None:
        labels = model.predict([item])[0].labels
    text = item.text()
    features, counts, terms = scorer.feature_terms(text)
    columns = [model.labels.index(label) for label in labels]
    tops = [np.argsort(-terms[:, j], kind="stable")[:k] for j in columns]
    names = _feature_names(scorer, text, features, np.unique(np.concatenate([np.zeros(0, np.int64), *tops])))
    word_terms = _word_terms(scorer, text)
    decision = scorer.intercept + terms.sum(axis=0) + sum((t for _, t in word_terms), np.zeros(scorer.n_labels))
    explanations = []
    for label, j, top in zip(labels, columns, tops):
        column = terms[:, j]
        ngrams = tuple(Term(names[f][0], float(column[f]), int(counts[f]), tuple(names[f][1:])) for f in top.tolist())
        rest = float(column.sum() - column[top].sum())
        words = tuple(Term(word, float(term[j])) for word, term in word_terms)
        score = float(1.0 / (1.0 + np.exp(-decision[j])))
        explanations.append(LabelExplanation(label, score, float(scorer.intercept[j]), ngrams, rest, words))
    return explanations


def _feature_names(scorer: FnvHashScorer, text: str, features: np.ndarray, wanted: np.ndarray) -> dict[int, list[str]]:
    """For each of `features[wanted]` (positions), the distinct substrings of the normalised text that hash to it,
    in order of first occurrence. Only the occurrences of those features are looked at."""
    normalised, starts, lengths, occurrence_features = scorer.hasher.occurrences(text)
    position = {int(features[i]): int(i) for i in wanted.tolist()}
    names: dict[int, list[str]] = {i: [] for i in position.values()}
    keep = np.isin(occurrence_features, features[wanted])
    for start, length, feature in zip(
        starts[keep].tolist(), lengths[keep].tolist(), occurrence_features[keep].tolist()
    ):
        found = names[position[feature]]
        substring = normalised[start : start + length]
        if substring not in found:
            found.append(substring)
    return names


def _word_terms(scorer: FnvHashScorer, text: str) -> list[tuple[str, np.ndarray]]:
    """Each matched title word and its per-label term (v4 models); [] otherwise."""
    words = scorer.words
    if words is None:
        return []
    _, rows, starts, lengths = words.spans([text])
    if not rows.shape[0]:
        return []
    title = text.split("\n", 1)[0]
    share = words.weight / rows.shape[0]
    return [
        (title[start : start + length], words.vectors[row].astype(np.float64) * share)
        for row, start, length in zip(rows.tolist(), starts.tolist(), lengths.tolist())
    ]
