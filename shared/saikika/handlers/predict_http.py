"""Online prediction over HTTP, in the shape Vertex AI endpoints take.

`POST {"instances": [item, ...]}` → `{"predictions": [{"id", "labels", "scores"}], "model_version"}`;
`GET` → health. Input is all-or-nothing here: the caller is waiting and can fix and resend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from saikika.cloud import gcs
from saikika.cloud.champion_cache import ChampionCache
from saikika.core import jsonl, logs
from saikika.core.errors import TransientError
from saikika.core.items import BATCH_MAX_ITEMS, ParsedMessage, parse_entries
from saikika.core.settings import Settings

# 1000 items at the item limits can exceed these; callers that large should use Pub/Sub or batch.
HTTP_MAX_BYTES = 10 * 1024 * 1024
# The characters of title, description and tags over all instances: what bounds one request's CPU time.
HTTP_MAX_TEXT_CHARS = 2_000_000

log = logging.getLogger("saikika.http")

Response = tuple[int, dict[str, Any]]


def _error(status: int, code: str, message: str, details: list | None = None) -> Response:
    return status, {"error": {"code": code, "message": message, "details": details or []}}


class OnlinePredictor:
    """One per function instance: the shared champion cache, and the HTTP contract around it."""

    def __init__(self, settings: Settings, client: gcs.Client | None = None):
        client = client or gcs.client(settings.project)
        self.models = ChampionCache(client.bucket(settings.models_bucket), settings.model_ttl_s)

    def respond(self, method: str, content_length: int | None, read_body: Callable[[int], bytes]) -> Response:
        """The whole request, always answered with the documented JSON. `read_body(n)` returns at most n bytes
        of the body; it is called only for a POST whose declared length (if any) is within bounds."""
        try:
            if method == "GET":
                return health(self.models)
            if method != "POST":
                return _error(405, "method_not_allowed", "use GET or POST")
            # Refuse oversize bodies before reading them; without a Content-Length (chunked), read one byte past
            # the limit to know, never more.
            if (content_length or 0) > HTTP_MAX_BYTES:
                return too_large()
            return predict(self.models, read_body(HTTP_MAX_BYTES + 1))
        except Exception as exc:  # noqa: BLE001  whatever failed, the caller gets JSON, not an HTML page
            logs.event(log, logging.ERROR, "http request failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            return _error(500, "internal", "the request could not be answered; it is safe to retry")


def health(models: ChampionCache) -> Response:
    try:
        version = models.get().version
    except TransientError as exc:
        return 200, {"status": "ok", "ready": False, "model_version": None, "reason": str(exc)}
    return 200, {"status": "ok", "ready": True, "model_version": version}


def too_large() -> Response:
    return _error(413, "payload_too_large", f"request body is larger than {HTTP_MAX_BYTES} bytes")


def predict(models: ChampionCache, body: bytes) -> Response:
    """A POST body already bounded by `respond` (declared length checked, at most one byte past the limit read)."""
    started = time.perf_counter()
    if len(body) > HTTP_MAX_BYTES:
        return too_large()
    try:
        request = jsonl.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, jsonl.NotJson) as exc:
        return _error(400, "invalid_json", f"request body is not UTF-8 JSON: {exc}")
    instances = request.get("instances") if isinstance(request, dict) else None
    if not isinstance(instances, list) or not 1 <= len(instances) <= BATCH_MAX_ITEMS:
        return _error(
            400, "invalid_request", f'expected {{"instances": [item, ...]}} with 1 to {BATCH_MAX_ITEMS} items'
        )
    parsed = ParsedMessage()
    parse_entries(instances, parsed)
    if parsed.problems:
        return _error(
            400,
            "invalid_items",
            f"{len(parsed.problems)} of {len(instances)} instances are invalid",
            [problem.to_json() for problem in parsed.problems],
        )
    characters = sum(len(item.title) + len(item.description) + sum(map(len, item.tags)) for item in parsed.items)
    if characters > HTTP_MAX_TEXT_CHARS:
        return _error(
            413,
            "too_much_text",
            f"the instances hold {characters} characters of text, more than "
            f"{HTTP_MAX_TEXT_CHARS} per request; split the request, or use Pub/Sub or batch prediction",
        )
    try:
        model = models.get()
    except TransientError as exc:
        return _error(503, "no_model", str(exc))
    predictions = [
        {"id": item.id, "labels": p.labels, "scores": p.scores}
        for item, p in zip(parsed.items, model.predict(parsed.items))
    ]
    logs.event(
        log,
        logging.INFO,
        "http prediction",
        items=len(predictions),
        model_version=model.version,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return 200, {"predictions": predictions, "model_version": model.version}
