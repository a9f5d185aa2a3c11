"""Fault scenarios on the local stack, run small inside `make test` (test_chaos.py) and large by `make chaos`
(bench/chaos.py, which writes bench/chaos.json). Each scenario publishes items with ids of its own, injects one
fault, waits until every published id is accounted for (or a deadline passes) and tallies: published, predicted
exactly once, rejected with a reason, lost, duplicated, predicted without a publish, seconds to recover.

The predict function reaches storage through a TCP proxy (faults.py), so storage can be cut or stalled under it
while the test's own client keeps reading the truth directly.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from saikika.cloud import registry
from saikika.core import jsonl
from saikika.core.decisions import Outcome
from saikika.core.events import PubSubMessage
from saikika.core.settings import Settings
from saikika.handlers.feedback import FeedbackRecorder
from saikika.handlers.promote import Promoter
from saikika.model import catalogue
from saikika.tooling.local_stack import FUNCTIONS, LocalStack
from saikika.tooling.polling import wait_until
from tests.integration.faults import TcpProxy
from tests.integration.helpers import REPO, promote, today

ITEMS_PER_MESSAGE = 100


@dataclass
class Tally:
    fault: str
    published: int
    predicted_once: int
    rejected: int
    lost: int
    duplicated: int
    unexpected: int
    seconds_to_recover: float | None

    def to_json(self) -> dict:
        return asdict(self)


class ChaosStack:
    """predict and feedback on the emulators, predict's storage behind a proxy; a champion already promoted."""

    def __init__(self, state_dir: Path, model_files, ack_deadline_s: int = 10):
        self.proxy = TcpProxy(0)  # the target is fake-gcs-server's port, known once the stack runs
        self.stack = LocalStack(
            state_dir=state_dir,
            functions_dir=REPO / "functions",
            functions=tuple(s for s in FUNCTIONS if s.name in ("predict", "feedback")),
            extra_env={"STORAGE_EMULATOR_HOST": self.proxy.url, "SAIKIKA_MODEL_TTL_S": "1"},
            ack_deadline_s=ack_deadline_s,
        )
        self.stack.start()
        self.proxy.target_port = int(self.stack.env["STORAGE_EMULATOR_HOST"].rsplit(":", 1)[1])
        promote(self.stack, model_files)
        # Promoted by the harness itself, not by a decision: the one champion allowed none.
        self.first_champion = model_files.metadata["version"]
        self.client = self.stack.storage_client()
        self.publisher = self.stack.publisher()
        self.predictions = self.client.bucket(self.stack.env["SAIKIKA_PREDICTIONS_BUCKET"])

    def stop(self) -> None:
        self.stack.stop()
        self.proxy.stop()

    # ---- publishing ----------------------------------------------------------------------------------
    def publish_items(
        self, prefix: str, messages: int, every_s: float = 0.0, rejected_every: int = 10
    ) -> tuple[set, set]:
        """`messages` messages of ITEMS_PER_MESSAGE items; every `rejected_every`-th message also carries one item
        without text, which must be stored as rejected. Returns (ids to predict, ids to reject)."""
        topic = self.publisher.topic_path(self.stack.project, "items")
        to_predict, to_reject, futures = set(), set(), []
        for m in range(messages):
            entries = [
                {"id": f"{prefix}-{m}-{i}", "title": "waterproof tent", "description": "for kids"}
                for i in range(ITEMS_PER_MESSAGE)
            ]
            to_predict |= {e["id"] for e in entries}
            if m % rejected_every == 0:
                entries.append({"id": f"{prefix}-{m}-bad"})
                to_reject.add(f"{prefix}-{m}-bad")
            futures.append(self.publisher.publish(topic, json.dumps({"items": entries}).encode()))
            if every_s:
                time.sleep(every_s)  # a steady stream, so the fault lands mid-stream
        for future in futures:
            future.result(timeout=60)
        return to_predict, to_reject

    # ---- accounting ------------------------------------------------------------------------------------
    def tally(
        self, fault: str, prefix: str, to_predict: set, to_reject: set, healed_at: float, timeout_s: float
    ) -> Tally:
        def outcome():
            predicted = Counter(line["id"] for line in self._lines("predictions/dt=", prefix))
            rejected = {e["id"] for e in self._lines("rejected/dt=", prefix)}
            return predicted, rejected

        try:
            wait_until(
                f"every item of {fault} accounted for",
                lambda: (lambda p, r: to_predict <= set(p) and to_reject <= r)(*outcome()),
                timeout_s=timeout_s,
            )
            recovered = time.monotonic() - healed_at
        except TimeoutError:
            recovered = None
        predicted, rejected = outcome()
        published = to_predict | to_reject
        return Tally(
            fault=fault,
            published=len(published),
            predicted_once=sum(1 for i in to_predict if predicted[i] == 1),
            rejected=len(to_reject & rejected),
            lost=len(published - set(predicted) - rejected),
            duplicated=sum(n - 1 for n in predicted.values() if n > 1),
            unexpected=len(set(predicted) - published) + len(rejected - published),
            seconds_to_recover=None if recovered is None else round(max(recovered, 0.0), 2),
        )

    def _lines(self, prefix: str, id_prefix: str) -> list[dict]:
        """Prediction lines, or the errors of rejected records, whose item id starts with `id_prefix`."""
        found = []
        for blob in self.client.bucket(self.predictions.name).list_blobs(prefix=prefix + f"{today():%Y-%m-%d}/"):
            record = blob.download_as_text()
            if prefix.startswith("predictions"):
                found += [json.loads(line) for line in jsonl.lines(record) if id_prefix in line]
            elif id_prefix in record:
                found += [e for e in json.loads(record)["errors"] if (e.get("id") or "").startswith(id_prefix)]
        return [entry for entry in found if entry["id"].startswith(id_prefix)]


# ---- the faults -------------------------------------------------------------------------------------------
def storage_outage(chaos: ChaosStack, messages: int, outage_s: float) -> Tally:
    """Storage refuses every connection for `outage_s` in the middle of a steady stream."""
    prefix = f"outage-{uuid.uuid4().hex[:6]}"
    result: dict = {}
    stream = threading.Thread(
        target=lambda: result.update(
            zip(("ids", "bad"), chaos.publish_items(prefix, messages, every_s=max(0.05, 2 * outage_s / messages)))
        )
    )
    stream.start()
    time.sleep(outage_s / 2)  # the stream is under way: the fault comes in its middle (a fault window, not a wait)
    chaos.proxy.set("reset")
    time.sleep(outage_s)
    chaos.proxy.set("forward")
    healed_at = time.monotonic()
    stream.join()
    return chaos.tally("storage outage mid-stream", prefix, result["ids"], result["bad"], healed_at, 240)


def storage_stall(chaos: ChaosStack, messages: int, stall_s: float) -> Tally:
    """Storage accepts and never answers for longer than the push ack deadline: Pub/Sub delivers again while the
    first delivery still waits; both finish once storage answers, and create-only writes keep one result."""
    prefix = f"stall-{uuid.uuid4().hex[:6]}"
    chaos.proxy.set("stall")
    ids, bad = chaos.publish_items(prefix, messages)
    time.sleep(stall_s)  # longer than the ack deadline (the fault window)
    chaos.proxy.set("forward")
    return chaos.tally("storage slower than the ack deadline", prefix, ids, bad, time.monotonic(), 240)


def predict_killed(chaos: ChaosStack, messages: int) -> Tally:
    """The predict instance is killed (SIGKILL) while messages are in flight, and a new one starts."""
    prefix = f"kill-{uuid.uuid4().hex[:6]}"
    result: dict = {}
    stream = threading.Thread(
        target=lambda: result.update(zip(("ids", "bad"), chaos.publish_items(prefix, messages, every_s=0.1)))
    )
    stream.start()
    wait_until("a first prediction of the stream", lambda: chaos._lines("predictions/dt=", prefix), timeout_s=60)
    chaos.stack.kill_function("predict")
    chaos.stack.start_function("predict")
    healed_at = time.monotonic()
    stream.join()
    return chaos.tally("predict killed mid-message", prefix, result["ids"], result["bad"], healed_at, 240)


def burst(chaos: ChaosStack, items: int) -> Tally:
    """`items` items published at once, as fast as the client publishes."""
    prefix = f"burst-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    ids, bad = chaos.publish_items(prefix, max(1, items // ITEMS_PER_MESSAGE))
    return chaos.tally(f"burst of {len(ids)} items", prefix, ids, bad, started, 600)


def feedback_backlog(chaos: ChaosStack, messages: int, days: int = 3) -> Tally:
    """Feedback delivered days after it was published (a backlog): every row becomes training data."""
    settings = Settings.from_env(chaos.stack.env)
    recorder = FeedbackRecorder(settings, chaos.client)
    published = today() - timedelta(days=days)
    data = chaos.client.bucket(settings.data_bucket)
    stored, started = 0, time.monotonic()
    for m in range(messages):
        message = PubSubMessage(
            id=f"backlog-{uuid.uuid4().hex[:8]}",
            publish_time=published,
            data=json.dumps({"id": f"fb-{m}", "title": "tent", "labels": ["waterproof"]}).encode(),
        )
        name = recorder.handle(message)
        stored += bool(name and data.get_blob(name))
    return Tally(
        "feedback backlog older than a day",
        messages,
        0,
        0,
        messages - stored,
        0,
        0,
        round(time.monotonic() - started, 2),
    )


def concurrent_promotions(chaos: ChaosStack, candidates) -> dict:
    """Several candidates judged at once: the pointer ends on a promoted one, and every champion the pointer has
    ever named was promoted by a recorded decision."""
    settings = Settings.from_env(chaos.stack.env)
    models = chaos.client.bucket(settings.models_bucket)
    for files in candidates:
        registry.push(models, *files)
    barrier = threading.Barrier(len(candidates))

    def judge(version):
        barrier.wait()
        Promoter(settings, chaos.client).judge(version)

    threads = [threading.Thread(target=judge, args=(f.metadata["version"],)) for f in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    champion = registry.read_champion(models)
    promoted = {d.version for d in registry.decision_log(models) if d.outcome is Outcome.PROMOTED}
    named = {champion.version} | {p.version for p in champion.history}
    return {
        "fault": "concurrent promotions",
        "candidates": len(candidates),
        "champion": champion.version,
        "champions_without_a_recorded_decision": sorted(named - promoted - {chaos.first_champion}),
    }


def concurrent_retrains(chaos: ChaosStack, runners: int = 3) -> dict:
    """Several retrain instances handle events for the same new data at once: the lease lets exactly one train,
    the others defer, and no version is trained twice."""
    from saikika.core import rows
    from saikika.core.events import ObjectEvent
    from saikika.handlers.retrain import Retrainer, RetryLater

    settings = Settings.from_env(
        {**chaos.stack.env, "SAIKIKA_RETRAIN_SETTLE_S": "0", "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "0"}
    )
    data = chaos.client.bucket(settings.data_bucket)
    blob = data.blob(f"training/chaos/{uuid.uuid4().hex[:8]}.jsonl")
    blob.upload_from_string(rows.dumps(catalogue.generate(400, seed=90)))
    event = ObjectEvent(settings.data_bucket, blob.name, int(blob.generation))
    barrier = threading.Barrier(runners)
    outcomes: list[str] = []

    def run(index: int) -> None:
        retrainer = Retrainer(settings, chaos.client)
        barrier.wait()
        try:
            outcomes.append(retrainer.on_object(event).status)  # each instance got the (same) data event
        except RetryLater:
            outcomes.append("deferred")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "fault": "concurrent retrains",
        "runners": runners,
        "trained": outcomes.count("trained"),
        "deferred_or_up_to_date": len(outcomes) - outcomes.count("trained"),
    }
