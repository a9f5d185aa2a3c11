"""The loop at marketplace scale, on the emulators: compaction that survives being killed between any two steps,
rows that carry their event time, deciding "anything new?" from pending work only, a loop that remembers (identical
data, failed runs, older candidates), a governed label set, the hand-off to a training job, and deferral by the
scheduled tick with the default settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from saikika.cloud import gcs, registry, training_store
from saikika.core import jsonl, objects, rows, splits
from saikika.core.decisions import Outcome
from saikika.core.events import PubSubMessage
from saikika.core.items import Item
from saikika.core.settings import Settings
from saikika.handlers.feedback import FeedbackRecorder
from saikika.handlers.promote import Promoter
from saikika.handlers.retrain import Retrainer
from saikika.model import catalogue
from saikika.tooling.local_stack import FUNCTIONS, LocalStack
from tests.integration.helpers import REPO, count_requests, start_stack, wait_until

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    """Pub/Sub emulator and fake-gcs-server only: the handlers are driven directly, one set of buckets per test."""
    stack = LocalStack(
        state_dir=tmp_path_factory.mktemp("scale"), functions_dir=REPO / "functions", functions=()
    ).start()
    yield stack
    stack.stop()


@pytest.fixture
def fresh(emulators):
    """Three new buckets and the settings that name them (fast loop timings unless a test says otherwise)."""
    client = emulators.storage_client()
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{role}-{suffix}" for role in ("data", "models", "predictions")}
    for name in names.values():
        client.create_bucket(name)

    def settings(**overrides: str) -> Settings:
        env = {
            "GOOGLE_CLOUD_PROJECT": emulators.project,
            "SAIKIKA_DATA_BUCKET": names["data"],
            "SAIKIKA_MODELS_BUCKET": names["models"],
            "SAIKIKA_PREDICTIONS_BUCKET": names["predictions"],
            "SAIKIKA_RETRAIN_SETTLE_S": "0",
            "SAIKIKA_RETRAIN_MIN_INTERVAL_S": "0",
            "SAIKIKA_RETRAIN_MIN_ROWS": "50",
            "SAIKIKA_TRAINING_LAUNCHER": "local",
            **overrides,
        }
        return Settings.from_env(env)

    return client, {role: client.bucket(name) for role, name in names.items()}, settings


def feedback_object(bucket, day: str, message_id: str, items: list[Item], published: datetime) -> str:
    name = f"{objects.FEEDBACK_PREFIX}/dt={day}/{message_id}.jsonl"
    bucket.blob(name).upload_from_string(
        jsonl.dumps(
            {**i.to_json(), rows.EVENT_TIME_FIELD: published.isoformat(), "message_id": message_id} for i in items
        )
    )
    return name


def present_lines(bucket) -> Counter:
    """Every row a snapshot would read, as a multiset of lines."""
    snap = training_store.snapshot(bucket)
    found = Counter()
    for shard in snap.shards:
        found.update(
            line
            for line in bucket.blob(shard.name).download_as_bytes(if_generation_match=shard.generation).split(b"\n")
            if line.strip()
        )
    for obj in snap.loose:
        found.update(line for line in bucket.blob(obj.name).download_as_bytes().split(b"\n") if line.strip())
    return found


# ---- 1. compaction ----------------------------------------------------------------------------------
KILLER = """
import os, signal, sys
from google.cloud import storage
from saikika.cloud import training_store
bucket = storage.Client(project="p").bucket(sys.argv[1])
kill_at, now = int(sys.argv[2]), float(sys.argv[3])
steps = []
def checkpoint(step):
    steps.append(step)
    if len(steps) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
training_store.compact(bucket, now=now, checkpoint=checkpoint)
print(len(steps))
"""


def _compaction_scenario(data) -> tuple[Counter, float]:
    """Day 1 compacted once already; then late day-1 feedback and day-2 feedback: the next compaction folds both,
    retires their sources and rolls day 1 (closed by then) up into one shard."""
    day1, day2 = datetime(2026, 11, 1, 12, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC)
    items = list(catalogue.generate(60, seed=8))
    for i in range(3):
        feedback_object(data, "2026-11-01", f"a{i}", items[i * 10 : (i + 1) * 10], day1)
    training_store.compact(data, now=day1.timestamp() + 3600)
    feedback_object(data, "2026-11-01", "late", items[30:40], day1)
    for i in range(2):
        feedback_object(data, "2026-11-02", f"b{i}", items[40 + i * 10 : 50 + i * 10], day2)
    return present_lines(data), day2.timestamp() + 86_400


def test_compaction_killed_between_any_two_steps_loses_and_duplicates_no_row(fresh, emulators):
    client, _, _ = fresh
    env = {**os.environ, **{k: emulators.env[k] for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}}
    kill_at, steps = 1, None
    while steps is None or kill_at <= steps:
        data = client.create_bucket(f"compact-{uuid.uuid4().hex[:8]}")
        expected, now = _compaction_scenario(data)
        assert sum(expected.values()) == 60
        child = subprocess.run(
            [sys.executable, "-c", KILLER, data.name, str(kill_at if steps is not None else 0), str(now)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if steps is None:  # the first run counts the steps, unkilled
            assert child.returncode == 0, child.stderr
            steps = int(child.stdout)
            assert steps >= 8
        else:
            assert child.returncode == -signal.SIGKILL, child.stderr
            assert present_lines(data) == expected, f"after a kill at step {kill_at}"
            training_store.compact(data, now=now)  # the next run finishes the job
            kill_at += 1
        assert present_lines(data) == expected
        manifest, _ = training_store.read_manifest(data)
        assert training_store.loose_feedback(data) == [] and manifest.retiring == ()
        assert sorted(s.day for s in manifest.shards) == ["2026-11-01", "2026-11-02"]  # day 1 rolled up


# ---- 2. rows carry their own time ------------------------------------------------------------------
def test_an_older_correction_arriving_after_a_newer_one_does_not_win(fresh):
    client, buckets, settings = fresh
    base = list(catalogue.generate(400, seed=12))
    target = base[0]
    buckets["data"].blob("training/base/catalogue.jsonl").upload_from_string(
        jsonl.dumps({**i.to_json(), rows.EVENT_TIME_FIELD: "2026-01-01T00:00:00Z"} for i in base)
    )
    recorder = FeedbackRecorder(settings(), client)
    newer, older = datetime.now(UTC), datetime.now(UTC) - timedelta(hours=2)

    def correction(message_id: str, labels: list[str], published: datetime) -> None:
        body = json.dumps({"id": target.id, "title": target.title, "labels": labels}).encode()
        recorder.handle(PubSubMessage(message_id, body, published))

    correction("1001", ["vintage", "handmade"], newer)  # the newer correction lands first
    correction("1000", ["waterproof"], older)  # an older one, redelivered late: written after it
    assert (
        buckets["data"].get_blob(objects.feedback(older, "1000")).updated
        >= buckets["data"].get_blob(objects.feedback(newer, "1001")).updated
    )
    snap = training_store.snapshot(buckets["data"])
    winners = training_store.newest_per_item(buckets["data"], snap)
    won = {item.id: item for item in training_store.iter_winning_items(buckets["data"], snap, winners)}
    assert won[target.id].labels == ("vintage", "handmade")
    assert winners.rows == 400 and winners.rows_valid == 402
    # At equal event times feedback wins over base data.
    tied = Item(id=base[1].id, title=base[1].title, labels=("kids",))
    feedback_object(buckets["data"], "2026-01-01", "tie", [tied], datetime(2026, 1, 1, tzinfo=UTC))
    snap = training_store.snapshot(buckets["data"])
    winners = training_store.newest_per_item(buckets["data"], snap)
    won = {item.id: item for item in training_store.iter_winning_items(buckets["data"], snap, winners)}
    assert won[base[1].id].labels == ("kids",)


def _pend(buckets, name: str, arrived: datetime | None = None) -> None:
    """The marker a data event leaves (the retrain handler's `on_object`), at a chosen arrival time."""
    blob = buckets["data"].get_blob(name)
    marker = objects.retrain_pending(name, blob.generation, arrived or blob.updated)
    gcs.create_json(buckets["models"], marker, {"object": name})


# ---- 3. cost in new data, not in history ----------------------------------------------------------
def test_deciding_nothing_is_new_reads_the_same_whatever_the_history(fresh, emulators):
    client, buckets, settings = fresh
    data = buckets["data"]
    items = list(catalogue.generate(300, seed=14))
    for i in range(150):  # 150 feedback messages of history, then a run that compacts them
        feedback_object(data, "2026-11-01", f"h{i}", items[2 * i : 2 * i + 2], datetime(2026, 11, 1, tzinfo=UTC))
    retrainer = Retrainer(settings(SAIKIKA_RETRAIN_MIN_ROWS="10"), client)
    for name in [b.name for b in data.list_blobs(prefix="training/")]:
        _pend(buckets, name)
    assert retrainer.tick("history").status == "trained"
    assert training_store.loose_feedback(data) == []  # all 150 folded into one shard

    counting_client = emulators.storage_client()
    calls = count_requests(counting_client)
    quiet = Retrainer(settings(), counting_client)
    assert quiet.tick("tick").status == "up-to-date"
    assert not any(f"/b/{data.name}/" in call for call in calls), calls  # the data bucket is not even listed
    assert len(calls) <= 3, calls  # the pending listing and the state


# ---- 8. a loop that remembers ---------------------------------------------------------------------


def test_identical_data_pushes_nothing_and_a_failed_run_waits_for_new_data(fresh):
    client, buckets, settings = fresh
    data, models = buckets["data"], buckets["models"]
    retrainer = Retrainer(settings(), client)
    catalogue_rows = rows.dumps(catalogue.generate(400, seed=15))
    data.blob("training/base/a.jsonl").upload_from_string(catalogue_rows)
    _pend(buckets, "training/base/a.jsonl")
    first = retrainer.tick("first")
    assert first.status == "trained"
    # The same bytes uploaded again (a new generation): the same data, nothing pushed.
    data.blob("training/base/a.jsonl").upload_from_string(catalogue_rows)
    _pend(buckets, "training/base/a.jsonl")
    again = retrainer.tick("re-uploaded")
    assert again.status == "up-to-date" and again.version == first.version and "nothing pushed" in again.reason
    # A run that pushed its candidate and died before recording itself leaves its work pending: the next run
    # finds the data's digest already trained and pushes nothing.
    _pend(buckets, "training/base/a.jsonl", datetime(2026, 1, 1, tzinfo=UTC))  # left behind by a crash
    assert retrainer.tick("after a crash").status == "up-to-date"
    assert registry.versions(models) == [first.version]

    # A run that fails (two labels, one too rare) is recorded with its reason and its work consumed...
    data.blob("training/base/a.jsonl").upload_from_string(
        rows.dumps(Item(id=f"x{i}", title=f"mug {i}", labels=("a",) if i else ("b",)) for i in range(100))
    )
    _pend(buckets, "training/base/a.jsonl")
    failed = retrainer.tick("bad data")
    assert failed.status == "skipped" and "need at least 2 labels" in failed.reason
    last = max(models.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX), key=lambda b: b.name)
    assert json.loads(last.download_as_bytes())["reason"] == failed.reason
    # ... so the next ticks find nothing to do: no hot loop on the same data; new data or a request retries.
    assert [retrainer.tick("tick").status for _ in range(3)] == ["up-to-date"] * 3


def test_a_candidate_trained_on_older_data_than_the_champion_is_rejected(fresh, model_files):
    client, buckets, settings = fresh
    models = buckets["models"]
    newer = {
        **model_files.metadata,
        "version": "newer-data",
        "training_data": {"newest_event_time": "2026-11-02T00:00:00+00:00"},
    }
    registry.push(models, model_files.model, newer, model_files.inference)
    registry.set_champion(models, newer, None, reason="test")
    older = {
        **model_files.metadata,
        "version": "older-data",
        "training_data": {"newest_event_time": "2026-11-01T00:00:00+00:00"},
    }
    registry.push(models, model_files.model, older, model_files.inference)
    decision = Promoter(settings(), client).judge("older-data")
    assert decision.outcome is Outcome.REJECTED
    assert "trained on older data than the champion" in decision.reason
    assert registry.read_champion(models).version == "newer-data"


# ---- 6. a governed label set ----------------------------------------------------------------------
def test_labels_beyond_the_limit_or_too_rare_are_left_out_with_the_reason(fresh):
    client, buckets, settings = fresh
    items = list(catalogue.generate(600, seed=16))
    rare = [Item(id=f"rare-{i}", title=f"limited {i}", labels=("limited-edition",)) for i in range(4)]
    buckets["data"].blob("training/base/a.jsonl").upload_from_string(rows.dumps(items + rare))
    _pend(buckets, "training/base/a.jsonl")
    result = Retrainer(settings(SAIKIKA_MAX_LABELS="4", SAIKIKA_NEW_LABEL_MIN_SUPPORT="10"), client).tick("labels")
    assert result.status == "trained"
    metadata = registry.read_metadata(buckets["models"], result.version)
    # Counted on what the run trains on: the evaluation slice is kept out (no holdout file here).
    counts = Counter(label for item in items if not splits.in_evaluation_slice(item.id) for label in item.labels)
    assert metadata["labels"] == sorted(sorted(counts, key=lambda label: (-counts[label], label))[:4])
    dropped = metadata["labels_dropped"]
    assert "new label: 4 example(s), fewer than 10" == dropped["limited-edition"]
    assert all("beyond SAIKIKA_MAX_LABELS=4" in dropped[label] for label in counts if label not in metadata["labels"])


# ---- 5. training where it fits --------------------------------------------------------------------
def test_a_run_above_the_bound_is_handed_to_a_training_job_and_its_candidate_judged(tmp_path):
    stack = start_stack(
        tmp_path,
        retrain_tick_s=1.0,
        SAIKIKA_TRAIN_JOB_BYTES="1000",
        SAIKIKA_RETRAIN_SETTLE_S="1",
        SAIKIKA_RETRAIN_MIN_INTERVAL_S="2",
    )
    try:
        client = stack.storage_client()
        data, models = (client.bucket(stack.env[f"SAIKIKA_{r}_BUCKET"]) for r in ("DATA", "MODELS"))
        data.blob("training/base/catalogue.jsonl").upload_from_string(rows.dumps(catalogue.generate(900, seed=17)))
        champion = wait_until(
            "a champion trained by the job and promoted", lambda: registry.read_champion(models), timeout_s=180
        )
        runs = [json.loads(b.download_as_bytes()) for b in models.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX)]
        trained = [r for r in runs if r["status"] == "trained"]
        assert len(trained) == 1 and trained[0]["version"] == champion.version and trained[0]["job_run_id"]
        assert "training job" in trained[0]["trigger"]
        log = (stack.state_dir / "logs" / "function-retrain.log").read_text()
        assert "retrain handed to a training job" in log
        assert registry.read_decision(models, champion.version)["outcome"] == "promoted"
        state = gcs.read_json(models, objects.RETRAIN_STATE_OBJECT)[0]
        assert "job" not in state and not list(models.list_blobs(prefix=objects.RETRAIN_PENDING_PREFIX))
    finally:
        stack.stop()


# ---- 7. deferral by the tick, default settings ----------------------------------------------------
def test_bursts_of_6_and_50_objects_train_with_the_default_settings(tmp_path, model_files):
    """As a new user gets it: `saikika local up` defaults (30 s settle, 300 s interval, the tick every 60 s), no
    redelivery involved. Two stacks side by side, one burst each."""
    retrain_only = tuple(s for s in FUNCTIONS if s.name == "retrain")
    stacks = [
        LocalStack(state_dir=tmp_path / f"burst-{n}", functions_dir=REPO / "functions", functions=retrain_only)
        for n in (6, 50)
    ]
    try:
        for stack in stacks:
            stack.start()
        for stack, count in zip(stacks, (6, 50)):
            data = stack.storage_client().bucket(stack.env["SAIKIKA_DATA_BUCKET"])
            for i in range(count):
                data.blob(f"training/burst/{i:03d}.jsonl").upload_from_string(
                    rows.dumps(
                        catalogue.generate(max(20, 300 // count), seed=1000 * count + i, id_prefix=f"{count}-{i}")
                    )
                )
        trained = {}
        for stack, count in zip(stacks, (6, 50)):
            models = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
            trained[count] = wait_until(
                f"a candidate from the burst of {count}",
                lambda m=models: [
                    json.loads(b.download_as_bytes()) for b in m.list_blobs(prefix=objects.RETRAIN_RUNS_PREFIX)
                ],
                timeout_s=240,
            )
        for count, runs in trained.items():
            assert [r["status"] for r in runs] == ["trained"], runs
            assert runs[0]["training_data"]["loose_objects"] == count
            assert runs[0]["trigger"].startswith("retrain-requests message") and "tick" in runs[0]["trigger"]
    finally:
        for stack in stacks:
            stack.stop()


def test_a_trickle_cannot_starve_training(fresh):
    """New data every few seconds keeps the newest pending object young; once the oldest has waited the min
    interval, the run happens anyway."""
    client, buckets, settings = fresh
    data = buckets["data"]
    for i in range(3):
        data.blob(f"training/t/{i}.jsonl").upload_from_string(
            rows.dumps(catalogue.generate(200, seed=40 + i, id_prefix=f"t{i}"))
        )
    now = time.time()
    # Pending since 301, 100 and 1 s ago: the newest is within the 30 s settle, the oldest past the 300 s interval.
    for i, age in enumerate((301, 100, 1)):
        _pend(buckets, f"training/t/{i}.jsonl", datetime.fromtimestamp(now - age, UTC))
    retrainer = Retrainer(
        settings(SAIKIKA_RETRAIN_SETTLE_S="30", SAIKIKA_RETRAIN_MIN_INTERVAL_S="300"), client, clock=lambda: now
    )
    assert retrainer.tick("trickle").status == "trained"
    # Without the old one, the same trickle waits for quiet.
    blob = data.get_blob("training/t/0.jsonl")
    data.blob("training/t/3.jsonl").upload_from_string(rows.dumps(catalogue.generate(200, seed=44, id_prefix="t3")))
    _pend(buckets, "training/t/3.jsonl", datetime.fromtimestamp(now + 400, UTC))
    later = Retrainer(
        settings(SAIKIKA_RETRAIN_SETTLE_S="30", SAIKIKA_RETRAIN_MIN_INTERVAL_S="300"), client, clock=lambda: now + 401
    )
    assert later.tick("trickle").status == "deferred"
    assert blob is not None
