"""Cloud Function `retrain`: new training data (a storage notification for training/ in the data
bucket) or a message on retrain-requests (the periodic retrain) may start a training run.

Not now (a run in progress, data still arriving, too soon after the last run) is an answer, not a failure:
a 503 makes Pub/Sub deliver the event again later, without a traceback in the logs. Anything else raised is
a failure, retried up to the dead-letter policy.
"""

import flask
import functions_framework

from saikika.core import logs
from saikika.core.events import object_event, pubsub_message
from saikika.core.settings import Settings
from saikika.handlers.retrain import Retrainer, RetryLater

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
RETRAINER = Retrainer(SETTINGS)


@functions_framework.cloud_event
def retrain(cloud_event):
    try:
        event = object_event(cloud_event)
        if event is not None:
            RETRAINER.on_object(event)
        else:
            RETRAINER.on_request(pubsub_message(cloud_event))
    except RetryLater as exc:  # the handler logged the deferral with its reason
        flask.abort(503, description=str(exc))
