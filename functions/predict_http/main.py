"""Cloud Function `predict_http`: online prediction, `POST {"instances": [...]}`; `GET` for health,
`GET /openapi.json` for the contract (docs/api.md)."""

import os

import flask
import functions_framework

from saikika.core import logs
from saikika.core.settings import Settings
from saikika.handlers.predict_http import OnlinePredictor, allowed_methods

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
# Cloud Run names the serving revision in K_REVISION: the deployment Vertex AI clients see as deployedModelId.
ONLINE = OnlinePredictor(SETTINGS, deployment=os.environ.get("K_REVISION", "local"))

# How much of a refused body is read (and dropped) so that the client, still sending, gets to read the answer.
DRAIN_MAX_BYTES = 64 * 1024 * 1024


def drained(stream) -> bool:
    """Read and drop what is left of the body; False if it could not be read to its end within the bound."""
    left = DRAIN_MAX_BYTES
    try:
        while left > 0:
            chunk = stream.read(min(left, 1 << 16))
            if not chunk:
                return True
            left -= len(chunk)
    except Exception:  # noqa: BLE001  broken framing, a client gone: nothing more to read
        return False
    return False


@functions_framework.http
def predict_http(request: flask.Request):
    status, body = ONLINE.respond(request.method, request.content_length, request.stream.read, request.path)
    # functions-framework reads whatever body is left after the function returns (an after_request hook, without
    # a bound): a chunked body whose framing is broken failed there, a 500 after the answer was made. The rest is
    # read here instead, within a bound and with its errors caught; beyond, the connection is closed.
    complete = drained(request.stream)
    request._cached_data = b""
    response = flask.jsonify(body)
    if not complete:
        response.headers["Connection"] = "close"
    if status == 405:
        response.headers["Allow"] = allowed_methods(request.path)
    return response, status
