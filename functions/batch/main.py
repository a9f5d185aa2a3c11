"""Cloud Function `batch`: a JSONL file under batch/input/ in the data bucket is predicted into the predictions
bucket's batch/ folder, here when it is small enough for one invocation, else by a batch job it launches.

Decodes the event and hands it to saikika. Returning acknowledges the event; raising (no champion yet, storage
unavailable, the job engine busy) makes Pub/Sub deliver it again, and finished parts are not redone.
"""

import functions_framework

from saikika.core import logs
from saikika.core.events import object_event
from saikika.core.settings import Settings
from saikika.handlers.batch import BatchScorer

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
SCORER = BatchScorer(SETTINGS)


@functions_framework.cloud_event
def batch(cloud_event):
    event = object_event(cloud_event)
    if event is not None:
        SCORER.on_object(event)
