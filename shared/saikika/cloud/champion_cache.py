"""The champion model cache every predictor shares: loaded once per instance, thread-safe,
re-checked every `SAIKIKA_MODEL_TTL_S` with a metadata read, reloaded only when the
champion pointer's generation changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from saikika.cloud import gcs, registry
from saikika.core import logs
from saikika.core.errors import ModelIntegrityError, NoChampionError, TransientError
from saikika.core.objects import CHAMPION_OBJECT, INFERENCE_FILE
from saikika.model import artifact
from saikika.model.label_model import LabelModel

log = logging.getLogger("saikika.serving")


def load_champion(bucket: gcs.Bucket, champion: registry.Champion, patience: gcs.Patience = gcs.PATIENT) -> LabelModel:
    """The champion as predictors serve it: its inference artifact (no scikit-learn import, no skops
    download), checksum-verified against metadata.json and the pointer."""
    return load_version(bucket, champion.version, champion.inference_sha256, patience)


def load_version(
    bucket: gcs.Bucket,
    version: str,
    expected_inference_sha256: str | None,
    patience: gcs.Patience = gcs.PATIENT,
    metadata: dict | None = None,
) -> LabelModel:
    """A version as predictors serve it (a run pinned to it, the champion), refused unless its inference arrays
    match metadata.json and `expected_inference_sha256` (what the pointer or the run's record says). `metadata`:
    the version's metadata.json as the caller already read it (else it is read here)."""
    metadata = metadata if metadata is not None else registry.read_metadata(bucket, version, patience)
    if metadata is None:
        raise ModelIntegrityError(f"model version {version} has no committed metadata.json")
    arrays = registry.read_file(bucket, version, INFERENCE_FILE, patience) if metadata.get("inference") else None
    if arrays is None:
        raise ModelIntegrityError(f"model version {version} has no {INFERENCE_FILE}")
    return artifact.load_inference(arrays, metadata, expected_sha256=expected_inference_sha256)


class ChampionCache:
    """Storage is read with `gcs.SERVING` patience (seconds, not minutes). Whatever goes wrong with storage, an
    instance that has a model keeps serving it and asks again one TTL later; only a version that is itself
    broken (checksum, format, metadata) is remembered as refused until the pointer moves."""

    def __init__(self, bucket: gcs.Bucket, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self._bucket = bucket
        self._ttl_s = ttl_s
        self._clock = clock
        self._model: LabelModel | None = None
        self._generation: int | None = None
        self._checked_at = float("-inf")
        self._refresh_lock = threading.Lock()

    @property
    def current(self) -> LabelModel | None:
        return self._model

    def get(self) -> LabelModel:
        """The model to serve now. Raises NoChampionError while there is none.

        Once the TTL has passed, callers wait for the pointer check (a metadata read) and, only if
        the champion changed, for the load: after the TTL nobody is served the old model.
        """
        model = self._model
        if model is not None and not self._stale():
            return model
        with self._refresh_lock:
            if self._model is None or self._stale():
                self._refresh()
        if self._model is None:
            raise NoChampionError("no champion model has been promoted yet")
        return self._model

    def _stale(self) -> bool:
        return self._clock() - self._checked_at >= self._ttl_s

    def _refresh(self) -> None:
        # Freshness counts from when we asked, not from when the answer came: a slow read must not stretch the TTL.
        asked_at = self._clock()
        try:
            generation = gcs.generation(self._bucket, CHAMPION_OBJECT, gcs.SERVING)
        except Exception as exc:  # noqa: BLE001  any storage failure: the model in memory is still good
            self._storage_failed("champion pointer unreadable", exc, asked_at)
            return
        if generation is None:
            if self._model is not None:
                logs.event(
                    log,
                    logging.ERROR,
                    "champion pointer is gone; serving the current model",
                    model_version=self._model.version,
                )
            self._checked_at = asked_at
            return
        if generation == self._generation:
            self._checked_at = asked_at
            return
        self._load(generation, asked_at)

    def _load(self, seen_generation: int, asked_at: float) -> None:
        started = time.perf_counter()
        try:
            champion = registry.read_champion(self._bucket, gcs.SERVING)
            if champion is None:
                raise ModelIntegrityError("champion pointer disappeared while loading")
            model = load_champion(self._bucket, champion, gcs.SERVING)
        except ModelIntegrityError as exc:
            # Remember the bad generation so we do not download it again on every request.
            self._generation = seen_generation
            self._checked_at = asked_at
            logs.event(
                log,
                logging.ERROR,
                "champion model refused",
                error=str(exc),
                model_version=self._model.version if self._model else None,
            )
            if self._model is None:
                raise TransientError(f"the champion model cannot be used: {exc}") from exc
            return
        except Exception as exc:  # noqa: BLE001  storage failed mid-load: not the version's fault, ask again later
            self._storage_failed("champion model unreadable", exc, asked_at)
            return
        previous = self._model.version if self._model else None
        self._model = model
        self._generation = champion.generation
        self._checked_at = asked_at
        logs.event(
            log,
            logging.INFO,
            "champion model loaded",
            model_version=model.version,
            previous_version=previous,
            load_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _storage_failed(self, what: str, exc: Exception, asked_at: float) -> None:
        # The check counts as done: the next attempt comes one TTL later, not on every request meanwhile.
        self._checked_at = asked_at
        if self._model is None:
            raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
        logs.event(
            log,
            logging.WARNING,
            f"{what}; serving the current model",
            model_version=self._model.version,
            error=f"{type(exc).__name__}: {exc}",
        )
