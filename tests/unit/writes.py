"""Every object name each function writes, built with the library's own path functions, by bucket role."""

from datetime import datetime, timezone

from saikika.core import objects

_WHEN = datetime(2026, 11, 29, tzinfo=timezone.utc)
_V = "20261129T000000Z-0123abcd"

WRITES: dict[str, list[tuple[str, str]]] = {
    "predict": [("predictions", objects.predictions(_WHEN, "1")), ("predictions", objects.rejected(_WHEN, "1"))],
    "predict_http": [],
    "feedback": [("data", objects.feedback(_WHEN, "1")), ("predictions", objects.rejected(_WHEN, "1", "feedback"))],
    "retrain": [
        ("models", objects.version_prefix(_V) + objects.MODEL_FILE),
        ("models", objects.version_prefix(_V) + "report/index.html"),
        ("models", objects.version_prefix(_V) + "report/roc.png"),
        ("models", objects.version_prefix(_V) + objects.METADATA_FILE),
        ("models", objects.RETRAIN_LEASE_OBJECT),
        ("models", objects.RETRAIN_STATE_OBJECT),
        ("models", objects.RETRAIN_RUNS_PREFIX + "20261129T000000.000000Z.json"),
    ],
    "promote": [
        ("models", objects.version_prefix(_V) + objects.DECISION_FILE),
        ("models", objects.CHAMPION_OBJECT),
        ("models", objects.DECISION_LOG_PREFIX + "20261129T000000.000000Z-" + _V + ".json"),
    ],
}
