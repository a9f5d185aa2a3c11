"""Request-response logging of the online path: sampled HTTP predictions, as prediction records, in the
predictions bucket where the event path's and batch runs' are (`saikika.core.objects.http_predictions`).

Off the request path: a request only appends its records to a buffer (a lock and a list append); a background
thread writes the buffer as one object every `flush_every_s` seconds, or sooner once `flush_records` are waiting,
and at exit (gunicorn stops a worker with SIGTERM, lets its threads finish and exits the interpreter: `atexit`
runs). What a crash (SIGKILL, out of memory) can lose is bounded: the records of at most the last
`flush_every_s` seconds, at most `max_buffered` records. Every object is created once (a generation
precondition) under a name of its own, so a retried write never duplicates lines.

The thread starts on first use, in the process that serves: functions-framework imports the function in
gunicorn's master and forks the workers, and threads do not survive a fork.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from saikika.cloud import gcs
from saikika.core import jsonl, logs, objects
from saikika.core.drift import LabelCounts

log = logging.getLogger("saikika.http.log")

FLUSH_EVERY_S = 10.0
FLUSH_RECORDS = 2_000
# Beyond this many records waiting (storage down for long), the oldest are dropped, counted and logged.
MAX_BUFFERED = 100_000


class PredictionLog:
    """Buffered, batched writer of prediction records; thread-safe."""

    def __init__(
        self,
        bucket: gcs.Bucket,
        flush_every_s: float = FLUSH_EVERY_S,
        flush_records: int = FLUSH_RECORDS,
        max_buffered: int = MAX_BUFFERED,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.bucket = bucket
        self.flush_every_s, self.flush_records, self.max_buffered = flush_every_s, flush_records, max_buffered
        self.clock = clock
        # One writer id per process: object names never collide between instances or workers.
        self.writer = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._sequence = 0
        self.dropped = 0

    def add(self, records: list[dict[str, Any]]) -> None:
        """Queue records for writing; never blocks on storage."""
        with self._lock:
            self._ensure_thread()
            self._buffer.extend(records)
            overflow = len(self._buffer) - self.max_buffered
            if overflow > 0:
                del self._buffer[:overflow]
                self.dropped += overflow
            if len(self._buffer) >= self.flush_records:
                self._wake.set()
        if overflow > 0:
            logs.event(log, logging.WARNING, "http prediction log full, oldest records dropped", dropped=overflow)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self.writer = uuid.uuid4().hex[:12]  # a forked worker is a writer of its own
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="http-prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_every_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write what is buffered as one object; returns the records written. On a storage failure the records go
        back to the buffer for the next attempt."""
        with self._lock:
            records, self._buffer = self._buffer, []
            self._sequence += 1
            sequence = self._sequence
        if not records:
            return 0
        when = self.clock()
        name = objects.http_predictions(when, self.writer, sequence)
        # A lone surrogate (valid in a JSON request) is written as its JSON escape: the line reads back the same.
        data = jsonl.dumps(records).encode("utf-8", "backslashreplace")
        try:
            counts = LabelCounts.of(record.get("labels") or () for record in records)
            gcs.create_only(self.bucket, name, data, jsonl.CONTENT_TYPE, metadata=counts.object_metadata())
        except gcs.TRANSIENT_ERRORS + (OSError,) as exc:  # storage unreachable: keep the records, try again later
            with self._lock:
                self._buffer[:0] = records
            logs.event(log, logging.WARNING, "http prediction log not written", object=name, error=repr(exc))
            return 0
        except Exception as exc:  # noqa: BLE001  refused (permissions, a bug): retrying would repeat it forever
            self.dropped += len(records)
            logs.event(
                log, logging.ERROR, "http prediction log refused", object=name, records=len(records), error=repr(exc)
            )
            return 0
        logs.event(log, logging.INFO, "http predictions logged", object=name, records=len(records))
        return len(records)

    def close(self) -> None:
        """Stop the thread and write what is left (at exit)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread() and self._pid == os.getpid():
            self._thread.join(timeout=30)
        self.flush()
