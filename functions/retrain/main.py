"""Cloud Function `retrain`: new training data (a storage notification for training/ in the data
bucket) or a message on retrain-requests (the periodic retrain) may start a training run.

Raising (a run in progress, or too soon after the last one) makes Pub/Sub redeliver later: that
redelivery is the debounced follow-up run.
"""

import functions_framework

from saikika.core import logs
from saikika.core.events import object_event, pubsub_message
from saikika.handlers.retrain import Retrainer
from saikika.core.settings import Settings

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
RETRAINER = Retrainer(SETTINGS)


@functions_framework.cloud_event
def retrain(cloud_event):
    event = object_event(cloud_event)
    if event is not None:
        RETRAINER.on_object(event)
    else:
        RETRAINER.on_request(pubsub_message(cloud_event))
