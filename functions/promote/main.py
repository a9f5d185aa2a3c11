"""Cloud Function `promote`: when a version's metadata.json appears in the models bucket, judge the
version against the champion on the same held-out rows and promote it by compare-and-swap."""

import functions_framework

from saikika.core import logs
from saikika.core.events import object_event
from saikika.core.settings import Settings
from saikika.handlers.promote import Promoter

SETTINGS = Settings.from_env()
logs.configure(SETTINGS.log_level)
PROMOTER = Promoter(SETTINGS)


@functions_framework.cloud_event
def promote(cloud_event):
    event = object_event(cloud_event)
    if event is not None:
        PROMOTER.on_object(event)
