"""Cloud Function `feedback`: confirmed labels published to Pub/Sub become training data.

Returning acknowledges (bad input is stored under rejected/feedback/); raising redelivers.
"""

import functions_framework

from saikika.core import logs
from saikika.core.events import pubsub_message
from saikika.core.settings import Settings
from saikika.handlers.feedback import FeedbackRecorder

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
RECORDER = FeedbackRecorder(SETTINGS)


@functions_framework.cloud_event
def feedback(cloud_event):
    RECORDER.handle(pubsub_message(cloud_event))
