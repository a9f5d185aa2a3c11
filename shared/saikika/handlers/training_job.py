"""The training job's entry point: `python -m saikika.handlers.training_job --run-id R --trigger T [--force]`.

The retrain function hands a run that would outgrow it (more than SAIKIKA_TRAIN_JOB_BYTES of training data) to
this entry point, on Cloud Run jobs in the cloud (the same image and service account as the retrain function,
more memory and hours instead of 540 s) and as a local process in the local stack. It is the same run: compaction,
snapshot, newest row per item, training (streamed above SAIKIKA_TRAIN_IN_MEMORY_ROWS), the candidate pushed with
metadata.json last, so promote judges it like any other.
"""

from __future__ import annotations

import argparse
import json
import sys

from saikika.core import logs
from saikika.core.settings import Settings
from saikika.handlers.retrain import Retrainer, RunStatus

# A job that ran and answered: nothing for the job's own retry to do (failed runs are recorded with their reason).
_DONE = (RunStatus.TRAINED, RunStatus.UP_TO_DATE, RunStatus.SKIPPED, RunStatus.IGNORED)


def parser() -> argparse.ArgumentParser:
    """What `saikika.cloud.launchers.TrainingJob.arguments()` passes."""
    parsed = argparse.ArgumentParser(prog="python -m saikika.handlers.training_job")
    parsed.add_argument("--run-id", required=True)
    parsed.add_argument("--trigger", default="training job")
    parsed.add_argument("--force", action="store_true")
    return parsed


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    result = Retrainer(settings).run_job(args.run_id, args.trigger, args.force)
    print(json.dumps({"status": str(result.status), "reason": result.reason, "version": result.version}))
    return 0 if result.status in _DONE else 1


if __name__ == "__main__":
    sys.exit(main())
