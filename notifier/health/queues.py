"""Queues nobody consumes, or whose oldest message waits too long: the check and its reads.

A watcher asks the broker how deep each queue is (and, where the broker lets it peek
without taking the message, a digest of the message at the head); the consumers are the
workers whose fresh heartbeat lists the queue (plus, on RabbitMQ, what the broker counts).
The oldest message's age is measured as "first seen at the head": the time since the
watcher first saw the current head message there. It is a lower bound of the real wait
(by up to one check interval). Where the broker cannot peek (RabbitMQ), the head is taken
as unchanged while the depth never fell, which is again a lower bound.

Every worker probes and checks; a queue's check counts once however many do. The check
locks each observed queue's row (in name order, so two checks never deadlock) before it
reads the open alerts, and skips an observation older than the row's last check: a second
worker sees the first one's alert instead of opening or counting another, and an older
depth never undoes a newer one (no resolve-and-reopen between two workers' views).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..enums import AlertType, Severity
from ..models import PlatformAlert, QueueState
from ..types import utcnow
from .alerting import open_alerts, open_health_alert, resolve_automatically
from .runs import CheckOutcome, fresh_heartbeats, span

#: The alert of a queue holding messages that no worker consumes (a root cause).
NO_CONSUMER_FINGERPRINT = "queue:no-consumer:"
#: The alert of a consumed queue whose oldest message has waited past its limit.
STALE_FINGERPRINT = "queue:stale:"
DEFAULT_MAX_AGE = timedelta(minutes=10)
QUEUE_NAME_MAX = 255
_FORGET_AFTER = timedelta(days=1)


def queue_scope(name: str) -> str:
    """The scope a queue's no-consumer alert explains (and its entries' misses belong to)."""
    return f"queue:{name}"


@dataclass(frozen=True)
class QueueObservation:
    """What the broker said of one queue just now."""

    name: str
    depth: int
    #: A digest of the message at the head; None where the broker cannot peek.
    head: str | None = None
    #: The consumers the broker itself counts (RabbitMQ); None where it cannot tell.
    broker_consumers: int | None = None
    #: When the broker was asked (None: when checked); an older one than the last check is skipped.
    seen_at: datetime | None = None


@dataclass(frozen=True)
class QueueReport:
    """One queue as last checked: depth, consumers and its oldest message's wait."""

    name: str
    depth: int
    consumers: int
    oldest_age: float | None
    checked_at: datetime


def consumers_by_queue(db: Session, now: datetime | None = None) -> dict[str, int]:
    """How many live workers consume each queue, from their heartbeats."""
    counts: dict[str, int] = {}
    for beat in fresh_heartbeats(db, now):
        for name in beat.queues or []:
            counts[str(name)] = counts.get(str(name), 0) + 1
    return counts


def _state(db: Session, name: str, now: datetime) -> QueueState:
    # Two watchers may see a new queue at once: insert-if-absent, then read it back locked
    # (SQLite has no row locks: the caller's immediate transaction serialises the checks).
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.execute(
        insert(QueueState)
        .values(name=name, depth=0, consumers=0, checked_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    state = db.get(QueueState, name, populate_existing=True, with_for_update=True)
    assert state is not None  # inserted or already there, in this transaction
    return state


def _head_since(state: QueueState, seen: QueueObservation, now: datetime) -> datetime | None:
    if seen.depth <= 0:
        return None
    if state.head_since is None or state.depth <= 0:
        return now
    if seen.head is not None:
        return state.head_since if seen.head == state.head else now
    # No peeking: the head is the same message as long as nothing left the queue.
    return state.head_since if seen.depth >= state.depth else now


def _update(state: QueueState, seen: QueueObservation, consumers: int, now: datetime) -> None:
    state.head_since = _head_since(state, seen, now)
    state.head = seen.head
    state.depth = max(0, seen.depth)
    state.consumers = consumers
    state.checked_at = now


def check_queues(
    db: Session,
    observations: Sequence[QueueObservation],
    *,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_ages: Mapping[str, timedelta] | None = None,
    now: datetime | None = None,
) -> CheckOutcome:
    """Record what was seen; alert on queues nobody consumes or whose head waits too long.

    Only the observed queues are touched: another watcher may watch other queues.
    """
    now = now or utcnow()
    db.execute(delete(QueueState).where(QueueState.checked_at < now - _FORGET_AFTER))
    # Not a name this table can hold (nor a broker, in practice): skipped.
    valid = {seen.name: seen for seen in observations if 0 < len(seen.name) <= QUEUE_NAME_MAX}
    fresh: list[tuple[QueueObservation, QueueState, datetime]] = []
    for name in sorted(valid):
        seen = valid[name]
        at = seen.seen_at or now
        state = _state(db, name, at)
        if state.checked_at > at:
            continue  # another worker checked a newer observation meanwhile
        fresh.append((seen, state, at))
    counted = consumers_by_queue(db, now)
    current = {**open_alerts(db, NO_CONSUMER_FINGERPRINT), **open_alerts(db, STALE_FINGERPRINT)}
    outcome = CheckOutcome()
    for seen, state, at in fresh:
        consumers = max(counted.get(seen.name, 0), seen.broker_consumers or 0)
        _update(state, seen, consumers, at)
        age = (at - state.head_since).total_seconds() if state.head_since else 0.0
        limit = (max_ages or {}).get(seen.name, max_age)
        problems = {
            NO_CONSUMER_FINGERPRINT: state.depth > 0 and consumers == 0,
            STALE_FINGERPRINT: state.depth > 0 and consumers > 0 and age > limit.total_seconds(),
        }
        for prefix, present in problems.items():
            fingerprint = f"{prefix}{seen.name}"
            existing = current.get(fingerprint)
            if present:
                _alert(db, existing, prefix, state, age, limit)
                if existing is None:
                    outcome.opened.append(fingerprint)
            elif existing is not None:
                reason = "queue drained" if state.depth == 0 else "a worker consumes it again"
                if prefix == STALE_FINGERPRINT and state.depth:
                    reason = "its oldest message is within the limit again"
                resolve_automatically(db, existing, reason)
                outcome.resolved.append(fingerprint)
    return outcome


def _alert(
    db: Session,
    existing: PlatformAlert | None,
    prefix: str,
    state: QueueState,
    age: float,
    limit: timedelta,
) -> None:
    name = state.name
    facts = (
        f"Queue {name} holds {state.depth} message(s); the oldest has waited at least {span(age)}."
    )
    if prefix == NO_CONSUMER_FINGERPRINT:
        title = f"Queue {name} has no consumer"
        description = (
            f"{facts} No worker consumes it. Start a worker with `-Q {name}` or route "
            "these tasks to a queue that is consumed."
        )
    else:
        title = f"Messages wait too long in queue {name}"
        description = (
            f"{facts} That is past its limit of {span(limit.total_seconds())} with "
            f"{state.consumers} worker(s) consuming it: add workers or concurrency."
        )
    open_health_alert(
        db,
        current=existing,
        bell=False,
        fingerprint=f"{prefix}{name}",
        alert_type=AlertType.CAPACITY,
        severity=Severity.CRITICAL,
        title=title,
        description=description,
        metadata={
            "queue": name,
            "depth": state.depth,
            "consumers": state.consumers,
            "oldest_age_seconds": round(age, 1),
        },
        systems=["celery", f"queue:{name}"],
        # No consumer is a root cause: it explains the misses of entries sent to this queue.
        explains=queue_scope(name) if prefix == NO_CONSUMER_FINGERPRINT else None,
    )


def queue_reports(db: Session, now: datetime | None = None) -> list[QueueReport]:
    """Every queue as last checked, by name; the oldest age as of ``now``."""
    now = now or utcnow()
    return [
        QueueReport(
            name=state.name,
            depth=state.depth,
            consumers=state.consumers,
            oldest_age=(now - state.head_since).total_seconds() if state.head_since else None,
            checked_at=state.checked_at,
        )
        for state in db.scalars(select(QueueState).order_by(QueueState.name))
    ]


__all__ = [
    "DEFAULT_MAX_AGE",
    "NO_CONSUMER_FINGERPRINT",
    "STALE_FINGERPRINT",
    "QueueObservation",
    "QueueReport",
    "check_queues",
    "consumers_by_queue",
    "queue_reports",
    "queue_scope",
]
