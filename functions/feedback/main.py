"""Cloud Function `feedback`: confirmed labels published to Pub/Sub become training data.

Returning acknowledges (bad input is stored under rejected/feedback/); raising redelivers.
"""

import functions_framework

from saikika import logs
from saikika.events import pubsub_message
from saikika.feedback_service import FeedbackRecorder
from saikika.settings import Settings

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
RECORDER = FeedbackRecorder(SETTINGS)


@functions_framework.cloud_event
def feedback(cloud_event):
    RECORDER.handle(pubsub_message(cloud_event))
