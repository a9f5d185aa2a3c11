"""Online prediction over HTTP, in the shape Vertex AI endpoints take; the contract is docs/api.md and the OpenAPI
document of `saikika.handlers.predict_http_openapi` (served at `GET /openapi.json`).

`POST {"instances": [item, ...], "parameters": {"explain": K}}` → `{"predictions": [{"id", "labels", "scores"
[, "explanations"]}], "model_version", "modelVersionId", "deployedModelId", "model"}`; `GET` → health. Input is
all-or-nothing here: the caller is waiting and can fix and resend. A sampled share of the answered requests is
logged as prediction records (`saikika.cloud.request_log`), off the request path.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from saikika.cloud import gcs
from saikika.cloud.champion_cache import ChampionCache
from saikika.cloud.request_log import PredictionLog
from saikika.core import jsonl, logs, records
from saikika.core.errors import TransientError
from saikika.core.items import BATCH_MAX_ITEMS, Item, ParsedMessage, parse_entries
from saikika.core.settings import Settings
from saikika.handlers import predict_http_openapi
from saikika.model import explain
from saikika.model.label_model import LabelModel

# 1000 items at the item limits can exceed these; callers that large should use Pub/Sub or batch.
HTTP_MAX_BYTES = 10 * 1024 * 1024
# The characters of title, description and tags over all instances: what bounds one request's CPU time.
HTTP_MAX_TEXT_CHARS = 2_000_000
OPENAPI_DOCUMENT = predict_http_openapi.document(HTTP_MAX_BYTES, HTTP_MAX_TEXT_CHARS)

log = logging.getLogger("saikika.http")


def openapi_json() -> str:
    """The document as docs/openapi.json holds it (regenerate: `python -c "from saikika.handlers.predict_http
    import openapi_json; print(openapi_json(), end='')" > docs/openapi.json`)."""
    return json.dumps(OPENAPI_DOCUMENT, indent=2, ensure_ascii=False) + "\n"


Response = tuple[int, dict[str, Any]]


def _error(status: int, code: str, message: str, details: list | None = None) -> Response:
    return status, {"error": {"code": code, "message": message, "details": details or []}}


class OnlinePredictor:
    """One per function instance: the shared champion cache, the request log, and the HTTP contract around them.
    `deployment` names what serves (the function's revision), for Vertex AI's `deployedModelId`."""

    def __init__(
        self,
        settings: Settings,
        client: gcs.Client | None = None,
        deployment: str = "local",
        sample: Callable[[], float] = random.random,
    ):
        client = client or gcs.client(settings.project)
        self.models = ChampionCache(client.bucket(settings.models_bucket), settings.model_ttl_s)
        self.models_bucket = settings.models_bucket
        self.deployment = deployment
        self.sampling, self.sample = settings.http_log_sampling, sample
        self.prediction_log = PredictionLog(client.bucket(settings.predictions_bucket))

    def respond(
        self, method: str, content_length: int | None, read_body: Callable[[int], bytes], path: str = "/"
    ) -> Response:
        """The whole request, always answered with the documented JSON. `read_body(n)` returns at most n bytes
        of the body; it is called only for a POST whose declared length (if any) is within bounds."""
        try:
            if is_openapi(path):
                return (200, OPENAPI_DOCUMENT) if method == "GET" else _error(405, "method_not_allowed", "use GET")
            if method == "GET":
                return health(self.models)
            if method != "POST":
                return _error(405, "method_not_allowed", "use GET or POST")
            # Refuse oversize bodies before reading them; without a Content-Length (chunked), read one byte past
            # the limit to know, never more.
            if (content_length or 0) > HTTP_MAX_BYTES:
                return too_large()
            try:
                body = read_body(HTTP_MAX_BYTES + 1)
            except Exception as exc:  # noqa: BLE001  broken chunk framing, a client gone: the request's fault
                return _error(400, "unreadable_body", f"the request body could not be read: {type(exc).__name__}")
            return self.predict(body)
        except Exception as exc:  # noqa: BLE001  whatever failed, the caller gets JSON, not an HTML page
            logs.event(log, logging.ERROR, "http request failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            return _error(500, "internal", "the request could not be answered; it is safe to retry")

    def predict(self, body: bytes) -> Response:
        """A POST body already bounded by `respond` (declared length checked, at most one byte past the limit)."""
        started = time.perf_counter()
        request = parse_request(body)
        if not isinstance(request, PredictRequest):
            return request
        parsed, k = request.items, request.explain
        try:
            model = self.models.get()
        except TransientError as exc:
            return _error(503, "no_model", str(exc))
        try:
            predictions = answer(model, parsed, k)
        except explain.NotExplainable as exc:
            return _error(422, "not_explainable", str(exc))
        request_id = uuid.uuid4().hex
        logged = self.sampling > 0 and self.sample() < self.sampling
        if logged:
            self.prediction_log.add(log_records(predictions, model.version, request_id))
        logs.event(
            log,
            logging.INFO,
            "http prediction",
            request_id=request_id,
            items=len(predictions),
            ids=[p["id"] for p in predictions[:20]],
            model_version=model.version,
            explain=k,
            logged=logged,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return 200, {
            "predictions": predictions,
            "model_version": model.version,
            # What Vertex AI's PredictResponse reads (model_version_id, deployed_model_id, model).
            "modelVersionId": model.version,
            "deployedModelId": self.deployment,
            "model": f"gs://{self.models_bucket}/models/{model.version}/",
        }


def is_openapi(path: str) -> bool:
    return path.rstrip("/").endswith(predict_http_openapi.OPENAPI_PATH)


def allowed_methods(path: str) -> str:
    """What a 405 on `path` names in its Allow header: exactly the document's methods there."""
    return "GET" if is_openapi(path) else "GET, POST"


def health(models: ChampionCache) -> Response:
    try:
        version = models.get().version
    except TransientError as exc:
        return 200, {"status": "ok", "ready": False, "model_version": None, "reason": str(exc)}
    return 200, {"status": "ok", "ready": True, "model_version": version}


def too_large() -> Response:
    return _error(413, "payload_too_large", f"request body is larger than {HTTP_MAX_BYTES} bytes")


@dataclass(frozen=True)
class PredictRequest:
    items: list[Item]
    # K of `parameters.explain`: the substrings shown per predicted label; 0 for none.
    explain: int


def parse_request(body: bytes) -> PredictRequest | Response:
    """The valid items and the explanation size K of a request, or the error response saying why not."""
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
    k = explain_size(request.get("parameters"))
    if k is None:
        return _error(
            400,
            "invalid_parameters",
            f'"parameters" must be an object (or null) whose "explain", if given, is an integer from 0 to '
            f"{explain.EXPLAIN_MAX_K}",
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
    return PredictRequest(parsed.items, k)


def explain_size(parameters: Any) -> int | None:
    """`parameters.explain` as K (0 when absent), or None if the parameters are not what the contract allows."""
    if parameters is None:
        return 0
    if not isinstance(parameters, dict):
        return None
    k = parameters.get("explain", 0)
    # JSON has one number type: 5.0 is the integer 5 (as JSON Schema says); true is not a number.
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= explain.EXPLAIN_MAX_K:
        return None
    return k


def answer(model: LabelModel, items: list[Item], k: int) -> list[dict[str, Any]]:
    """The predictions of a request, each with its labels' explanations when K > 0."""
    predictions = []
    for item, p in zip(items, model.predict(items)):
        prediction: dict[str, Any] = {"id": item.id, "labels": p.labels, "scores": p.scores}
        if k:
            prediction["explanations"] = [e.to_json() for e in explain.explain(model, item, k, p.labels)]
        predictions.append(prediction)
    return predictions


def log_records(predictions: list[dict[str, Any]], version: str, request_id: str) -> list[dict[str, Any]]:
    """The request's predictions as prediction records (`saikika.core.records`), traced by the request id."""
    predicted_at = datetime.now(UTC).isoformat()
    return [
        records.prediction(p["id"], p["labels"], p["scores"], version, predicted_at, request_id=request_id)
        for p in predictions
    ]
