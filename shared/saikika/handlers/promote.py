"""Judge a new model version when its metadata.json appears, and promote it by compare-and-swap."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from google.cloud import storage

from saikika.cloud import gcs, launchers, registry, training_store
from saikika.cloud.champion_cache import load_champion
from saikika.core import logs, objects, promotion
from saikika.core.errors import ConfigError, ModelIntegrityError
from saikika.core.events import ObjectEvent, parse_rfc3339
from saikika.core.settings import Settings
from saikika.model import evaluation, validation

log = logging.getLogger("saikika.promote")

MAX_CAS_ATTEMPTS = 5


class Promoter:
    def __init__(
        self, settings: Settings, client: storage.Client | None = None, launcher: launchers.Launcher | None = None
    ):
        self.settings = settings
        client = client or gcs.client(settings.project)
        self.data_bucket = client.bucket(settings.data_bucket)
        self.models_bucket = client.bucket(settings.models_bucket)
        self.predictions_bucket = client.bucket(settings.predictions_bucket)
        self._launcher = launcher

    def on_object(self, event: ObjectEvent) -> dict | None:
        version = objects.version_of_metadata(event.name)
        if event.bucket != self.settings.models_bucket or not version or event.event_type != "OBJECT_FINALIZE":
            logs.event(log, logging.DEBUG, "event ignored: not a model version", bucket=event.bucket, object=event.name)
            return None
        return self.judge(version)

    def judge(self, version: str) -> dict:
        started = time.perf_counter()
        decision_name = objects.version_file(version, objects.DECISION_FILE)
        existing = registry.read_decision(self.models_bucket, version)
        if existing is not None:
            logs.event(log, logging.INFO, "version already judged", model_version=version, outcome=existing["outcome"])
            self._rescore(existing)  # a delivery after a failed launch launches it
            return existing

        decision = self._decide(version)
        decision["decided_at"] = datetime.now(UTC).isoformat()
        if gcs.create_json(self.models_bucket, decision_name, decision):
            registry.record_decision(self.models_bucket, decision)
        logs.event(
            log,
            logging.INFO if decision["outcome"] != "rejected" else logging.WARNING,
            f"model {decision['outcome']}",
            model_version=version,
            reason=decision["reason"],
            champion_version=decision.get("champion_version"),
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        self._rescore(decision)
        return decision

    def _rescore(self, decision: dict) -> None:
        """Re-score on promotion (SAIKIKA_RESCORE_INPUT; off by default): one batch job over the catalogue with
        the new champion, launched once per promotion. A failed launch raises, so the event is delivered again;
        the decision stands either way."""
        if decision.get("outcome") != "promoted" or not self.settings.rescore_input:
            return
        version = decision["version"]
        champion = registry.read_champion(self.models_bucket)
        if champion is None or champion.version != version:
            logs.event(log, logging.INFO, "re-score skipped: the champion has moved on", model_version=version)
            return
        run_id = f"rescore-{version}"
        try:
            launched = launchers.launch_batch_run(
                self.predictions_bucket,
                self.models_bucket,
                datetime.fromisoformat(decision["decided_at"]),
                run_id,
                self.settings.rescore_input,
                version,
                champion.inference_sha256,
                self._launcher or launchers.from_settings(self.settings),
            )
        except ConfigError as exc:  # retrying cannot fix a setting; the promotion stands
            logs.event(log, logging.ERROR, "re-score on promotion not launched", model_version=version, error=str(exc))
            return
        logs.event(
            log,
            logging.INFO,
            "re-score on promotion launched",
            model_version=version,
            run_id=run_id,
            job_id=launched.job_id,
            duplicate=launched.duplicate,
            input=self.settings.rescore_input,
        )

    def _decide(self, version: str) -> dict:
        base = {"version": version, "action": "judge"}
        found = registry.read_version(self.models_bucket, version)
        if found is None:
            return {**base, "outcome": "rejected", "reason": "model.skops or metadata.json is missing"}
        metadata = found.metadata
        try:
            candidate = validation.validate(found)
        except ModelIntegrityError as exc:
            return {**base, "outcome": "rejected", "reason": f"refused: {exc}"}

        found_rows = training_store.evaluation_rows(self.data_bucket, self.settings.promotion_require_holdout)
        if found_rows is None:
            return {
                **base,
                "outcome": "rejected",
                "reason": (
                    f"SAIKIKA_PROMOTION_REQUIRE_HOLDOUT is set and {training_store.holdout_uri(self.data_bucket)} does "
                    "not exist: nothing trusted to judge on"
                ),
            }
        rows, source = found_rows
        base.update(evaluated_on=source, evaluation_rows=len(rows))
        for _ in range(MAX_CAS_ATTEMPTS):
            champion = registry.read_champion(self.models_bucket)
            if champion is not None and champion.version == version:
                return {
                    **base,
                    "outcome": "already-champion",
                    "reason": "this version is the champion already",
                    "champion_version": version,
                }
            older = self._older_data(metadata, champion)
            if older:
                return {**base, "outcome": "rejected", "reason": older, "champion_version": champion.version}
            champion_model = self._load_champion(champion) if champion is not None else None
            # Both on the same rows and the same labels (the union of both label sets).
            labels = sorted(set(candidate.labels) | set(champion_model.labels if champion_model else ()))
            candidate_metrics = _summary(evaluation.evaluate(candidate, rows, labels)) if rows else None
            champion_metrics = (
                _summary(evaluation.evaluate(champion_model, rows, labels)) if rows and champion_model else None
            )
            promote, reason = promotion.decide(
                candidate_metrics,
                champion_metrics,
                self.settings.promotion_tolerance,
                self.settings.promotion_label_margin,
                has_champion=champion_model is not None,
                shared_labels=set(candidate.labels) & set(champion_model.labels) if champion_model else set(),
            )
            outcome = {
                **base,
                "champion_version": champion.version if champion else None,
                "candidate_metrics": candidate_metrics,
                "champion_metrics": champion_metrics,
                "reason": reason,
            }
            if not promote:
                return {**outcome, "outcome": "rejected"}
            try:
                registry.set_champion(self.models_bucket, metadata, champion, reason=reason)
            except registry.ChampionChanged:
                continue  # someone promoted meanwhile: re-read and decide against the new champion
            return {**outcome, "outcome": "promoted"}
        return {**base, "outcome": "rejected", "reason": f"champion kept changing ({MAX_CAS_ATTEMPTS} attempts)"}

    def _older_data(self, metadata: dict, champion: registry.Champion | None) -> str | None:
        """A candidate whose newest training row is older than the champion's (a run judged late, a job that
        finished after a newer run) would roll the model back in time: refused, with that reason."""
        if champion is None:
            return None
        champion_metadata = registry.read_metadata(self.models_bucket, champion.version) or {}
        ours = (metadata.get("training_data") or {}).get("newest_event_time")
        theirs = (champion_metadata.get("training_data") or {}).get("newest_event_time")
        if ours and theirs and parse_rfc3339(ours) < parse_rfc3339(theirs):
            return (
                f"trained on older data than the champion: its newest row is from {ours}, the champion's "
                f"({champion.version}) from {theirs}"
            )
        return None

    def _load_champion(self, champion: registry.Champion):
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


def _summary(metrics: dict) -> dict:
    return {key: metrics[key] for key in ("top1_accuracy", "micro_f1", "macro_f1", "per_label", "rows")}
