"""Cloud Function `predict`: items published to Pub/Sub become a predictions object.

Decodes the event and hands it to saikika. Returning acknowledges the message (bad
input is stored under rejected/ by the library); raising makes Pub/Sub redeliver
(no champion yet, storage unavailable), up to the subscription's dead-letter policy.
"""

import functions_framework

from saikika.core import logs
from saikika.core.events import pubsub_message
from saikika.core.settings import Settings
from saikika.handlers.predict import Predictor

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
PREDICTOR = Predictor(SETTINGS)


@functions_framework.cloud_event
def predict(cloud_event):
    PREDICTOR.handle(pubsub_message(cloud_event))
