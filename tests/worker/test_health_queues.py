"""What the health loop reads of the broker: the watched queues, their depth and head."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection, Queue
from notifier.worker.health import observe, probe, watched_queues

from tests.conftest import RABBITMQ_URL, require_service


def test_the_watched_queues_come_from_the_apps_configuration() -> None:
    app = Celery("watched", set_as_current=False)
    app.conf.update(
        task_default_queue="default",
        task_queues=[Queue("imports")],
        task_routes={"shop.*": {"queue": "shop"}, "mail.send": "mail", "x.*": {"exchange": "e"}},
        beat_schedule={"nightly": {"task": "t", "schedule": 60, "options": {"queue": "night"}}},
        notifier_health_queues=["extra"],
    )
    assert watched_queues(app) == ["default", "extra", "imports", "mail", "night", "shop"]


@pytest.fixture
def queue_name() -> str:
    return f"health-runs-{uuid.uuid4().hex[:8]}"


def _publish(connection: Connection, queue: str, body: str, priority: int | None = None) -> None:
    producer = connection.Producer()
    producer.publish(
        body, routing_key=queue, declare=[Queue(queue, max_priority=9)], priority=priority
    )


@pytest.fixture
def redis_connection(redis_url: str, queue_name: str) -> Iterator[Connection]:
    with Connection(redis_url) as connection:
        yield connection
        channel = connection.channel()
        channel.queue_delete(queue_name)
        channel.close()


def test_redis_depth_counts_every_priority_and_the_head_follows_the_oldest(
    redis_connection: Connection, queue_name: str
) -> None:
    assert [(o.depth, o.head) for o in probe(redis_connection, [queue_name])] == [(0, None)]
    _publish(redis_connection, queue_name, "first")
    _publish(redis_connection, queue_name, "urgent", priority=9)
    [seen] = probe(redis_connection, [queue_name])
    assert (seen.name, seen.depth, seen.broker_consumers) == (queue_name, 2, None)
    _publish(redis_connection, queue_name, "second")
    [again] = probe(redis_connection, [queue_name])
    assert (again.depth, again.head) == (3, seen.head)  # the same message waits at the head
    redis_connection.SimpleQueue(queue_name).get(timeout=2).ack()
    [moved] = probe(redis_connection, [queue_name])
    assert moved.depth == 2 and moved.head != seen.head


def test_the_sqlalchemy_transport_counts_visible_rows_and_peeks_the_lowest_id(
    tmp_path: Path, queue_name: str
) -> None:
    with Connection(f"sqla+sqlite:///{tmp_path / 'broker.db'}") as connection:
        _publish(connection, queue_name, "first")
        _publish(connection, queue_name, "second")
        [seen] = probe(connection, [queue_name])
        assert (seen.depth, seen.head) == (2, "1")
        connection.SimpleQueue(queue_name).get(timeout=2).ack()
        [moved] = probe(connection, [queue_name])
        assert (moved.depth, moved.head) == (1, "2")


@pytest.mark.rabbitmq
def test_rabbitmq_reports_depth_and_its_own_consumer_count(queue_name: str) -> None:
    require_service("RabbitMQ", RABBITMQ_URL)
    with Connection(RABBITMQ_URL) as connection:
        try:
            assert [o.depth for o in probe(connection, ["health-runs-missing", queue_name])] == [
                0,
                0,
            ]
            _publish(connection, queue_name, "first")
            [seen] = probe(connection, [queue_name])
            assert (seen.depth, seen.head, seen.broker_consumers) == (1, None, 0)
        finally:
            channel = connection.channel()
            channel.queue_delete(queue_name)
            channel.close()


def test_observe_reads_every_watched_queue_of_an_app(
    redis_connection: Connection, redis_url: str, queue_name: str
) -> None:
    app = Celery("observe", broker=redis_url, set_as_current=False)
    app.conf.update(task_default_queue=queue_name, notifier_health_queues=[f"{queue_name}-b"])
    _publish(redis_connection, queue_name, "first")
    seen = {o.name: o.depth for o in observe(app)}
    assert seen == {queue_name: 1, f"{queue_name}-b": 0}
    app.close()
