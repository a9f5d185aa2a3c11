"""Every object name each function writes, built with the library's own path functions, by bucket role."""

from datetime import datetime, timezone

from saikika import artifact, paths, registry, retrain_service

_WHEN = datetime(2026, 11, 29, tzinfo=timezone.utc)
_V = "20261129T000000Z-0123abcd"

WRITES: dict[str, list[tuple[str, str]]] = {
    "predict": [("predictions", paths.predictions(_WHEN, "1")), ("predictions", paths.rejected(_WHEN, "1"))],
    "predict_http": [],
    "feedback": [("data", paths.feedback(_WHEN, "1")), ("predictions", paths.rejected(_WHEN, "1", "feedback"))],
    "retrain": [
        ("models", registry.version_prefix(_V) + artifact.MODEL_FILE),
        ("models", registry.version_prefix(_V) + "report/index.html"),
        ("models", registry.version_prefix(_V) + "report/roc.png"),
        ("models", registry.version_prefix(_V) + artifact.METADATA_FILE),
        ("models", retrain_service.LEASE_OBJECT),
        ("models", retrain_service.STATE_OBJECT),
        ("models", retrain_service.RUNS_PREFIX + "20261129T000000.000000Z.json"),
    ],
    "promote": [
        ("models", registry.version_prefix(_V) + registry.DECISION_FILE),
        ("models", registry.CHAMPION_OBJECT),
        ("models", registry.HISTORY_PREFIX + "20261129T000000.000000Z-" + _V + ".json"),
    ],
}
