"""Cloud Function `predict_http`: online prediction, `POST {"instances": [...]}`; `GET` for health."""

import flask
import functions_framework

from saikika.core import logs
from saikika.core.settings import Settings
from saikika.handlers.predict_http import OnlinePredictor

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
ONLINE = OnlinePredictor(SETTINGS)


@functions_framework.http
def predict_http(request: flask.Request):
    status, body = ONLINE.respond(request.method, request.content_length, request.stream.read)
    return flask.jsonify(body), status
