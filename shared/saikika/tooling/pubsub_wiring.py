"""The local stack's Pub/Sub as production has it (terraform): topics, one dead-letter topic per push subscription
(with a pull subscription that keeps its dead letters), push subscriptions with retry backoff, and the retrain tick
that Cloud Scheduler publishes in the cloud."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from saikika.core import logs

log = logging.getLogger("saikika.local")

MAX_DELIVERY_ATTEMPTS = 5


def subscription_name(topic: str, function: str) -> str:
    return f"{topic}-to-{function.replace('_', '-')}"


def dead_letter_topic(topic: str, function: str) -> str:
    """One dead-letter topic per subscription, as in production."""
    return f"{subscription_name(topic, function)}-dead-letter"


def create_topics(publisher, project: str, topics: Iterable[str]) -> None:
    for topic in sorted(set(topics)):
        publisher.create_topic(name=publisher.topic_path(project, topic))


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


def create_push_subscriptions(
    subscriber,
    project: str,
    functions: Iterable,
    urls: Mapping[str, str],
    *,
    min_backoff_s: int,
    max_backoff_s: int,
    ack_deadline_s: int,
) -> None:
    """One push subscription per function and topic it listens on (`FunctionSpec.topics`), delivering to its URL
    (`urls[spec.env_key]`) at the path functions-framework reads the topic from."""
    for spec in functions:
        for topic in spec.topics:
            create_push_subscription(
                subscriber,
                project,
                topic,
                spec.name,
                endpoint=f"{urls[spec.env_key]}/projects/{project}/topics/{topic}",
                min_backoff_s=min_backoff_s,
                max_backoff_s=max_backoff_s,
                max_delivery_attempts=spec.max_delivery_attempts,
                ack_deadline_s=ack_deadline_s,
            )


class RetrainTick:
    """Publishes a retrain request every few seconds from a daemon thread until stopped, as terraform's Cloud
    Scheduler job does in the cloud."""

    PAYLOAD = b'{"reason": "tick (local stack)"}'

    def __init__(self) -> None:
        self._stopping = threading.Event()

    def start(self, publisher, topic_path: str, every_s: float) -> None:
        self._stopping.clear()
        threading.Thread(
            target=self._run, args=(publisher, topic_path, every_s), name="retrain-tick", daemon=True
        ).start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self, publisher, topic_path: str, every_s: float) -> None:
        while not self._stopping.wait(every_s):
            try:
                publisher.publish(topic_path, self.PAYLOAD).result(timeout=30)
            except Exception as exc:  # noqa: BLE001  (the stack is stopping, or the emulator is down)
                logs.event(log, logging.WARNING, "retrain tick not published", error=repr(exc))
