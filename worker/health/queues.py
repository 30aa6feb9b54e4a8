"""Which queues a Celery app sends to, and how deep each is on the broker right now.

Watched: the app's default queue, ``task_queues``, the queues ``task_routes`` name (a
router function's choices cannot be known in advance), the queues beat entries name in
their options, and ``notifier_health_queues``. Depth comes from a passive
``queue_declare`` on every transport (a RabbitMQ queue's ``message_count`` and
``consumer_count``; kombu's virtual transports count their own store: Redis adds up the
priority sub-queues, the SQLAlchemy transport counts its visible rows). Where the broker
lets us read the head without taking it, its digest lets the core tell "the same message
still waits" from "messages move": Redis (``LINDEX``) and the SQLAlchemy transport (the
lowest visible message id). RabbitMQ cannot be peeked without a redelivery, so none.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from notifier import utcnow
from notifier.health import QueueObservation

logger = logging.getLogger("notifier.worker")


def _route_queues(routes: Any) -> Iterator[str]:
    if isinstance(routes, dict):
        for target in routes.values():
            if isinstance(target, str):
                yield target
            elif isinstance(target, dict) and target.get("queue"):
                queue = target["queue"]
                yield str(getattr(queue, "name", queue))
    elif isinstance(routes, list | tuple):
        for item in routes:
            yield from _route_queues(item)


def watched_queues(app: Any) -> list[str]:
    """The names of the queues ``app`` sends to, as far as its configuration tells."""
    conf = app.conf
    names = [str(conf.get("task_default_queue") or "celery")]
    names += [str(getattr(q, "name", q)) for q in conf.get("task_queues") or ()]
    names += list(_route_queues(conf.get("task_routes")))
    for entry in dict(conf.get("beat_schedule") or {}).values():
        queue = (entry.get("options") or {}).get("queue") if isinstance(entry, dict) else None
        if queue:
            names.append(str(getattr(queue, "name", queue)))
    names += [str(name) for name in conf.get("notifier_health_queues") or ()]
    return sorted({name for name in names if name})


def _digest(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def _redis_head(channel: Any, name: str) -> str | None:
    # kombu's Redis transport pushes on the left and pops on the right, from the lowest
    # priority step first ("name", then "name<sep><step>").
    client = channel.client
    for step in channel.priority_steps:
        key = f"{name}{channel.sep}{step}" if step else name
        head = client.lindex(key, -1)
        if head is not None:
            return f"{step}:{_digest(head)}"
    return None


def _sql_head(channel: Any, name: str) -> str | None:
    from sqlalchemy import func  # the SQLAlchemy transport only

    session = channel.session
    message, queue = channel.message_cls, channel.queue_cls
    try:
        lowest = (
            session.query(func.min(message.id))
            .join(queue, message.queue_id == queue.id)
            .filter(queue.name == name, message.visible.is_(True))
            .scalar()
        )
    finally:
        session.commit()  # end the read: a SQLite file must not stay locked
    return None if lowest is None else str(lowest)


_HEADS = {"redis": _redis_head, "sql": _sql_head}


def probe(connection: Any, names: Iterable[str]) -> list[QueueObservation]:
    """Depth (and head, consumers where known) of each queue on ``connection``'s broker."""
    driver = connection.transport.driver_type
    head_of = _HEADS.get(driver)
    observations: list[QueueObservation] = []
    at = utcnow()  # before the first answer: a check skips what is older than its last
    channel = connection.channel()
    try:
        for name in names:
            try:
                declared = channel.queue_declare(queue=name, passive=True)
            except connection.channel_errors:  # no such queue: nothing waits in it
                observations.append(QueueObservation(name, 0, seen_at=at))
                channel = _reopened(connection, channel)
                continue
            depth = int(declared.message_count or 0)
            head = head_of(channel, name) if head_of is not None and depth else None
            consumers = int(declared.consumer_count or 0) if driver == "amqp" else None
            observations.append(QueueObservation(name, depth, head, consumers, at))
    finally:
        _close(channel)
    return observations


def _reopened(connection: Any, channel: Any) -> Any:
    # A failed passive declare closes an AMQP channel; virtual channels stay usable.
    if connection.transport.driver_type != "amqp":
        return channel
    _close(channel)
    return connection.channel()


def _close(channel: Any) -> None:
    try:
        channel.close()
    except Exception:  # a channel the broker already closed
        logger.debug("notifier: closing a probe channel failed", exc_info=True)


def observe(app: Any) -> list[QueueObservation]:
    """What the broker says now of every queue ``app`` sends to, on a short connection.

    For a watcher that runs now and then (``notifier watch``); the worker's health loop
    keeps its connection instead.
    """
    with app.connection_for_read() as connection:
        return probe(connection, watched_queues(app))
