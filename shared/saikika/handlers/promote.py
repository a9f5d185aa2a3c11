"""Judge a new model version when its metadata.json appears, and promote it by compare-and-swap."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

from saikika.cloud import gcs, launchers, registry, training_store
from saikika.cloud.champion_cache import load_champion
from saikika.core import logs, objects, promotion
from saikika.core.decisions import Action, Decision, Outcome
from saikika.core.errors import ConfigError, ModelIntegrityError
from saikika.core.events import ObjectEvent, parse_rfc3339
from saikika.core.items import Item
from saikika.core.settings import Settings
from saikika.model import evaluation, validation
from saikika.model.label_model import LabelModel

log = logging.getLogger("saikika.promote")

MAX_CAS_ATTEMPTS = 5


class Promoter:
    def __init__(
        self, settings: Settings, client: gcs.Client | None = None, launcher: launchers.Launcher | None = None
    ):
        self.settings = settings
        client = client or gcs.client(settings.project)
        self.data_bucket = client.bucket(settings.data_bucket)
        self.models_bucket = client.bucket(settings.models_bucket)
        self.predictions_bucket = client.bucket(settings.predictions_bucket)
        self._launcher = launcher

    def on_object(self, event: ObjectEvent) -> Decision | None:
        version = objects.version_of_metadata(event.name)
        if event.bucket != self.settings.models_bucket or not version or event.event_type != "OBJECT_FINALIZE":
            logs.event(log, logging.DEBUG, "event ignored: not a model version", bucket=event.bucket, object=event.name)
            return None
        return self.judge(version)

    def judge(self, version: str) -> Decision:
        started = time.perf_counter()
        existing = registry.read_verdict(self.models_bucket, version)
        if existing is not None:
            logs.event(log, logging.INFO, "version already judged", model_version=version, outcome=existing.outcome)
            self._rescore(existing)  # a delivery after a failed launch launches it
            return existing

        decision = self._decide(version).decided(datetime.now(UTC).isoformat())
        registry.write_verdict(self.models_bucket, decision)
        logs.event(
            log,
            logging.INFO if decision.outcome is not Outcome.REJECTED else logging.WARNING,
            f"model {decision.outcome}",
            model_version=version,
            reason=decision.reason,
            champion_version=decision.champion_version,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        self._rescore(decision)
        return decision

    def _rescore(self, decision: Decision) -> None:
        """Re-score on promotion (SAIKIKA_RESCORE_INPUT; off by default): one batch job over the catalogue with
        the new champion, launched once per promotion. A failed launch raises, so the event is delivered again;
        the decision stands either way."""
        if decision.outcome is not Outcome.PROMOTED or not self.settings.rescore_input:
            return
        champion = registry.read_champion(self.models_bucket)
        if champion is None or champion.version != decision.version:
            logs.event(log, logging.INFO, "re-score skipped: the champion has moved on", model_version=decision.version)
            return
        run_id = f"rescore-{decision.version}"
        try:
            launched = launchers.launch_batch_run(
                self.predictions_bucket,
                self.models_bucket,
                datetime.fromisoformat(decision.decided_at),
                run_id,
                self.settings.rescore_input,
                champion.version,
                champion.inference_sha256,
                self._launcher or launchers.from_settings(self.settings),
                self.settings,
            )
        except ConfigError as exc:  # retrying cannot fix a setting; the promotion stands
            logs.event(
                log, logging.ERROR, "re-score on promotion not launched", model_version=decision.version, error=str(exc)
            )
            return
        logs.event(
            log,
            logging.INFO,
            "re-score on promotion launched",
            model_version=decision.version,
            run_id=run_id,
            job_id=launched.job_id,
            duplicate=launched.duplicate,
            input=self.settings.rescore_input,
        )

    def _decide(self, version: str) -> Decision:
        judged = Decision(version, Action.JUDGE, Outcome.REJECTED)
        found = registry.read_version(self.models_bucket, version)
        if found is None:
            return replace(judged, reason="model.skops or metadata.json is missing")
        try:
            candidate = validation.validate(found)
        except ModelIntegrityError as exc:
            return replace(judged, reason=f"refused: {exc}")

        found_rows = training_store.evaluation_rows(self.data_bucket, self.settings.promotion_require_holdout)
        if found_rows is None:
            return replace(
                judged,
                reason=(
                    f"SAIKIKA_PROMOTION_REQUIRE_HOLDOUT is set and {training_store.holdout_uri(self.data_bucket)} does "
                    "not exist: nothing trusted to judge on"
                ),
            )
        rows, source = found_rows
        judged = replace(judged, evaluated_on=source, evaluation_rows=len(rows))
        for _ in range(MAX_CAS_ATTEMPTS):
            decision = self._against_champion(judged, found.metadata, candidate, rows)
            if decision is not None:
                return decision
        return replace(judged, reason=f"champion kept changing ({MAX_CAS_ATTEMPTS} attempts)")

    def _against_champion(
        self, judged: Decision, metadata: dict, candidate: LabelModel, rows: list[Item]
    ) -> Decision | None:
        """One attempt: read the champion, compare, and promote by compare-and-swap. None if the champion changed
        meanwhile (someone promoted): the caller re-reads and decides against the new one."""
        champion = registry.read_champion(self.models_bucket)
        if champion is not None and champion.version == judged.version:
            return replace(
                judged,
                outcome=Outcome.ALREADY_CHAMPION,
                reason="this version is the champion already",
                champion_version=judged.version,
            )
        older = _older_data(self.models_bucket, metadata, champion)
        if older:
            return replace(judged, reason=older, champion_version=champion.version)
        scored = _score(judged, candidate, self._load_champion(champion) if champion else None, rows, self.settings)
        scored = replace(scored, champion_version=champion.version if champion else None)
        if scored.outcome is not Outcome.PROMOTED:
            return scored
        try:
            registry.set_champion(self.models_bucket, metadata, champion, reason=scored.reason)
        except registry.ChampionChanged:
            return None
        return scored

    def _load_champion(self, champion: registry.Champion) -> LabelModel | None:
        """The champion as predictors serve it (load_champion: same checks, same files); None if it
        cannot be loaded, and then it is no obstacle to a valid candidate."""
        try:
            model = load_champion(self.models_bucket, champion)
        except ModelIntegrityError as exc:  # a broken or malformed version
            logs.event(
                log,
                logging.ERROR,
                "champion cannot be loaded for comparison",
                model_version=champion.version,
                error=str(exc),
            )
            return None
        return model


def _older_data(models_bucket: gcs.Bucket, metadata: dict, champion: registry.Champion | None) -> str | None:
    """A candidate whose newest training row is older than the champion's (a run judged late, a job that
    finished after a newer run) would roll the model back in time: refused, with that reason."""
    if champion is None:
        return None
    champion_metadata = registry.read_metadata(models_bucket, champion.version) or {}
    ours = (metadata.get("training_data") or {}).get("newest_event_time")
    theirs = (champion_metadata.get("training_data") or {}).get("newest_event_time")
    if ours and theirs and parse_rfc3339(ours) < parse_rfc3339(theirs):
        return (
            f"trained on older data than the champion: its newest row is from {ours}, the champion's "
            f"({champion.version}) from {theirs}"
        )
    return None


def _score(
    judged: Decision, candidate: LabelModel, champion: LabelModel | None, rows: list[Item], settings: Settings
) -> Decision:
    """Both models on the same rows and the same labels (the union of both label sets), and the verdict."""
    labels = sorted(set(candidate.labels) | set(champion.labels if champion else ()))
    candidate_metrics = _summary(evaluation.evaluate(candidate, rows, labels)) if rows else None
    champion_metrics = _summary(evaluation.evaluate(champion, rows, labels)) if rows and champion else None
    promote, reason = promotion.decide(
        candidate_metrics,
        champion_metrics,
        settings.promotion_tolerance,
        settings.promotion_label_margin,
        has_champion=champion is not None,
        shared_labels=set(candidate.labels) & set(champion.labels) if champion else set(),
    )
    return replace(
        judged,
        outcome=Outcome.PROMOTED if promote else Outcome.REJECTED,
        reason=reason,
        scored=True,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
    )


def _summary(metrics: dict) -> dict:
    return {key: metrics[key] for key in ("top1_accuracy", "micro_f1", "macro_f1", "per_label", "rows")}
