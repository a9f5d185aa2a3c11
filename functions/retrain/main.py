"""Cloud Function `retrain`: new training data (a storage notification for training/ in the data bucket) is
recorded as pending work; a message on retrain-requests (the scheduler's tick, or a request) may start a run.

Not now (data still arriving, a run in progress) is an answer: the event is acknowledged and the next tick looks
again. Only a run abandoned because the state changed under it answers 503 (its work stays pending). Anything else
raised is a failure, retried up to the dead-letter policy.
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
