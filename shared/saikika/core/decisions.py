"""A decision on a model version: the promote function's verdict (`models/<version>/decision.json`, and an entry of
the decision log `models/history/`), or a promotion or rollback by hand (a decision-log entry). Pure: the value and
its JSON, keys as every release has written them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    JUDGE = "judge"
    PROMOTE_BY_HAND = "promote-by-hand"
    ROLLBACK = "rollback"


class Outcome(StrEnum):
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ALREADY_CHAMPION = "already-champion"


@dataclass(frozen=True)
class Decision:
    version: str
    action: Action
    outcome: Outcome
    reason: str | None = None
    evaluated_on: str | None = None
    evaluation_rows: int | None = None
    champion_version: str | None = None
    # Whether candidate and champion were scored on the evaluation rows: the metrics keys are then written, null
    # when a side had no rows or no model.
    scored: bool = False
    candidate_metrics: dict | None = None
    champion_metrics: dict | None = None
    # By hand: the champion it replaced (None when there was none).
    previous_champion: str | None = None
    decided_at: str | None = None

    @property
    def by_hand(self) -> bool:
        return self.action is not Action.JUDGE

    def decided(self, at: str) -> Decision:
        return replace(self, decided_at=at)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "action": str(self.action)}
        optional = {"evaluated_on": self.evaluated_on, "evaluation_rows": self.evaluation_rows}
        out.update((key, value) for key, value in optional.items() if value is not None)
        if self.champion_version is not None or self.scored:
            out["champion_version"] = self.champion_version
        if self.scored:
            out.update(candidate_metrics=self.candidate_metrics, champion_metrics=self.champion_metrics)
        if self.reason is not None:
            out["reason"] = self.reason
        out["outcome"] = str(self.outcome)
        if self.by_hand:
            out["previous_champion"] = self.previous_champion
        if self.decided_at is not None:
            out["decided_at"] = self.decided_at
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(
            version=data.get("version", "unknown"),
            action=Action(data.get("action", Action.JUDGE)),
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason"),
            evaluated_on=data.get("evaluated_on"),
            evaluation_rows=data.get("evaluation_rows"),
            champion_version=data.get("champion_version"),
            scored="candidate_metrics" in data,
            candidate_metrics=data.get("candidate_metrics"),
            champion_metrics=data.get("champion_metrics"),
            previous_champion=data.get("previous_champion"),
            decided_at=data.get("decided_at"),
        )


# The reasons the command line records for its promotions by hand (`story` tells them apart).
PUSHED_AND_PROMOTED = "promoted by hand (models push --promote)"
PROMOTED_BY_HAND = "promoted by hand (saikika models promote)"


def story(version: str, verdict: Decision | None, log: Iterable[Decision]) -> tuple[str, str]:
    """What happened to `version`, in order ("rejected → promoted by hand"), and why (the verdict's reason, and any
    reason given by hand beyond the command line's own): from the decision log (oldest first), and from the
    version's `decision.json` if the log has no verdict for it."""
    entries = [
        d for d in log if d.version == version or (d.action is Action.ROLLBACK and d.previous_champion == version)
    ]
    if verdict is not None and not any(d.action is Action.JUDGE and d.version == version for d in entries):
        entries.insert(0, verdict)
    steps: list[str] = []
    reasons: list[str] = []
    for decision in entries:
        step = _step(version, decision, bool(steps))
        if step is None:
            continue
        steps.append(step)
        if decision.reason and decision.reason not in (PUSHED_AND_PROMOTED, PROMOTED_BY_HAND):
            reasons.append(decision.reason)
    return " → ".join(steps) or "not judged yet", "; ".join(dict.fromkeys(reasons))


def _step(version: str, decision: Decision, after_another: bool) -> str | None:
    """One decision as a step of `version`'s story; None for the verdict that found it champion already (after a
    promotion by hand, which is the step that counts)."""
    if decision.action is Action.ROLLBACK:
        return "restored by rollback" if decision.version == version else "rolled back"
    if decision.action is Action.PROMOTE_BY_HAND:
        return "promoted by push" if decision.reason == PUSHED_AND_PROMOTED else "promoted by hand"
    if decision.outcome is Outcome.ALREADY_CHAMPION:
        return None if after_another else "already champion"
    return str(decision.outcome)
