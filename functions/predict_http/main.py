"""Cloud Function `predict_http`: online prediction, `POST {"instances": [...]}`; `GET` for health."""

import flask
import functions_framework

from saikika import http_service, logs
from saikika.predict_service import Predictor
from saikika.settings import Settings

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
PREDICTOR = Predictor(SETTINGS)


@functions_framework.http
def predict_http(request: flask.Request):
    if request.method == "GET":
        status, body = http_service.health(PREDICTOR.models)
    elif request.method == "POST":
        # Refuse oversize bodies before reading them.
        if (request.content_length or 0) > http_service.HTTP_MAX_BYTES:
            status, body = http_service.too_large()
        else:
            status, body = http_service.predict(PREDICTOR.models, request.get_data(), request.content_length)
    else:
        status, body = 405, {"error": {"code": "method_not_allowed", "message": "use GET or POST", "details": []}}
    return flask.jsonify(body), status
