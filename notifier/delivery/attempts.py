"""Attempts: the retry schedule, what an answer means, and recording each attempt.

Retry times live in ``next_attempt_at``, never in long Celery countdowns (which outlive a
Redis visibility timeout and run twice). Successes are recorded in a few cached Core
statements, many at a time; failures through the ORM (they may disable an endpoint and
notify the admins). :class:`Recorder` records beside the sends, at most ``in_flight``
behind, and takes the endpoint rows it changes in id order (no deadlock between two
dispatchers).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, Literal, cast

from sqlalchemy import Insert, Table, Update, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from .. import metrics
from ..db import Database
from ..enums import DeliveryChannel, DeliveryStatus, NotificationType, Priority
from ..models import Delivery, DeliveryAttempt, DeliveryEndpoint
from ..notifications import admin_notification_service
from ..outbox import mark_queued
from ..types import utcnow
from . import egress
from .settings import DispatchReport

__all__ = [
    "DISABLE_AFTER",
    "JITTER",
    "MAX_ATTEMPTS",
    "RETRY_AFTER_MAX",
    "RETRY_DELAYS",
    "SUCCESS_STAMP_EVERY",
    "Outcome",
    "Recorder",
    "Result",
    "classify",
    "record",
    "replay",
    "replay_failed_since",
    "retry_delay",
]

#: Seconds before attempt 1, 2, ...: about 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_DELAYS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS)
JITTER = 0.2
#: Longest a Retry-After may push an attempt back.
RETRY_AFTER_MAX = 36000
DISABLE_AFTER = timedelta(days=5)
#: An endpoint's ``last_success_at`` is written at most this often (one UPDATE per send of
#: the same row serialised every concurrent record behind its row lock).
SUCCESS_STAMP_EVERY = timedelta(seconds=1)
_RETRY_STATUSES = {408, 429}

Result = Literal["succeeded", "retry", "failed", "gone"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one send ended, and what its attempt row records."""

    result: Result
    duration: float = 0.0
    response_status: int | None = None
    response_body: str | None = None
    error_class: str | None = None
    error: str | None = None
    retry_after: float | None = None


def retry_delay(attempts_made: int, rng: Callable[[], float] = random.random) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failures; None when exhausted."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts_made]
    return base * (1 - JITTER + 2 * JITTER * rng())


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, RETRY_AFTER_MAX))


def classify(response: egress.Response, now: datetime) -> Outcome:
    """What a receiver's answer means: success, retry (408, 429, 5xx), gone (410) or failed."""
    status = response.status

    def outcome(result: Result, **error: Any) -> Outcome:
        return Outcome(result, response.duration, status, response.body, **error)

    if 200 <= status < 300:
        return outcome("succeeded")
    said = {"error_class": f"HTTP{status}", "error": f"the receiver answered {status}"}
    if status == 410:
        return outcome("gone", **said)
    if status in _RETRY_STATUSES or status >= 500:
        return outcome(
            "retry", retry_after=_retry_after(response.headers.get("retry-after"), now), **said
        )
    return outcome("failed", **said)


def _attempt(delivery_id: int, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The ``notifier_delivery_attempts`` row recording ``outcome``."""
    return {
        "delivery_id": delivery_id,
        "attempted_at": now,
        "duration_ms": round(outcome.duration * 1000),
        "outcome": outcome.result if outcome.result in ("succeeded", "retry") else "failed",
        "error_class": outcome.error_class,
        "error": outcome.error,
        "response_status": outcome.response_status,
        "response_body": (outcome.response_body or None)
        and outcome.response_body[: egress.RESPONSE_BODY_LIMIT],
    }


@cache
def _success_statements() -> tuple[Update, Insert, Update]:
    """Mark deliveries sent, add their attempts, stamp their endpoints: built once.

    Core statements on the tables, compiled once: built per call as ORM statements, they
    cost more CPU than the send itself (see BENCHMARKS.md, Delivery).
    """
    deliveries = cast(Table, Delivery.__table__)
    endpoints = cast(Table, DeliveryEndpoint.__table__)
    mark = (
        update(deliveries)
        .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            status=DeliveryStatus.SUCCEEDED,
            attempt_count=deliveries.c.attempt_count + 1,
            claimed_until=None,
            finished_at=bindparam("now"),
            last_error=None,
        )
        .returning(deliveries.c.id, deliveries.c.endpoint_id)
    )
    stamp = (
        update(endpoints)
        .where(
            endpoints.c.id.in_(bindparam("endpoint_ids", expanding=True)),
            or_(
                endpoints.c.failing_since.is_not(None),
                endpoints.c.last_success_at.is_(None),
                endpoints.c.last_success_at <= bindparam("stale"),
            ),
        )
        .values(failing_since=None, last_success_at=bindparam("now"))
    )
    return mark, insert(cast(Table, DeliveryAttempt.__table__)), stamp


def _record_successes(
    db: Session,
    group: Sequence[tuple[int, DeliveryChannel, Outcome]],
    now: datetime,
    stamp: set[int] | None,
) -> int:
    """Record sends that succeeded in at most three statements, however many; returns how many.

    ``stamp``: the endpoints whose health to update (None: all the deliveries' endpoints);
    ``last_success_at`` is written at most once a second per endpoint.
    """
    mark, add_attempts, stamp_endpoints = _success_statements()
    done = db.execute(mark, {"ids": [delivery_id for delivery_id, *_ in group], "now": now}).all()
    if not done:
        return 0
    present = {row[0] for row in done}
    recorded = [(i, channel, outcome) for i, channel, outcome in group if i in present]
    db.execute(add_attempts, [_attempt(i, outcome, now) for i, _, outcome in recorded])
    for channel in {channel for _, channel, _ in recorded}:
        amount = sum(1 for _, c, _ in recorded if c is channel)
        metrics.inc_on_commit(
            db, "notifier_delivery_attempts_total", (str(channel), "succeeded"), amount
        )
    endpoint_ids = {row[1] for row in done if row[1] is not None}
    if stamp is not None:
        endpoint_ids &= stamp
    if endpoint_ids:
        db.execute(
            stamp_endpoints,
            {"endpoint_ids": list(endpoint_ids), "now": now, "stale": now - SUCCESS_STAMP_EVERY},
        )
    return len(done)


def record(db: Session, delivery: Delivery, outcome: Outcome, now: datetime) -> str:
    """Record one attempt through the ORM (retry schedule, endpoint health); the final result."""
    attempt = _attempt(delivery.id, outcome, now)
    db.add(DeliveryAttempt(**attempt))
    metrics.inc_on_commit(
        db, "notifier_delivery_attempts_total", (str(delivery.channel), attempt["outcome"])
    )
    delivery.attempt_count += 1
    delivery.claimed_until = None
    endpoint = db.get(DeliveryEndpoint, delivery.endpoint_id) if delivery.endpoint_id else None
    if outcome.result == "succeeded":
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.finished_at = now
        delivery.last_error = None
        if endpoint is not None:
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
            stamped = endpoint.last_success_at
            if stamped is None or now - stamped >= SUCCESS_STAMP_EVERY:
                endpoint.last_success_at = now
        return "succeeded"
    delivery.last_error = outcome.error
    final = outcome.result
    if outcome.result == "retry":
        delay = retry_delay(delivery.attempt_count)
        if delay is None:
            final = "failed"
        else:
            delivery.next_attempt_at = now + timedelta(seconds=max(delay, outcome.retry_after or 0))
    if final != "retry":
        delivery.status = DeliveryStatus.FAILED
        delivery.finished_at = now
    if endpoint is not None and endpoint.channel is not DeliveryChannel.EMAIL:
        if outcome.result == "gone":
            _disable(db, endpoint, "the receiver answered 410 Gone")
        else:
            endpoint.failing_since = endpoint.failing_since or now
            if now - endpoint.failing_since >= DISABLE_AFTER:
                _disable(db, endpoint, "every delivery failed for 5 days")
    return "failed" if final == "gone" else final


def _disable(db: Session, endpoint: DeliveryEndpoint, reason: str) -> None:
    if not endpoint.is_enabled:
        return
    endpoint.is_enabled = False
    endpoint.disabled_reason = reason
    db.flush()  # so the notification below is not queued for this endpoint
    admin_notification_service.create_notification(
        db,
        type=NotificationType.SYSTEM_INFO,
        priority=Priority.HIGH,
        title=f"Delivery endpoint disabled: {endpoint.name}"[:200],
        message=f"{endpoint.channel} endpoint '{endpoint.name}' was disabled: {reason}. "
        "Fix the receiver, then enable it again on the Channels page.",
        action_required=True,
    )


class Recorder:
    """Records attempts beside the sends, never more than ``in_flight`` sends behind.

    A send takes a slot; the slot is freed once its attempt is committed. One thread
    records, in send order: the attempts waiting when it comes free are committed together
    (one transaction, a few round trips for several sends). What a crash or a database cut
    can lose is only the sends not recorded yet, which the slots keep to ``in_flight``, and
    those go out again with the same webhook-id. Once a record fails nothing more is sent;
    the claims lapse and the next run sends the unrecorded ones again.
    """

    def __init__(self, database: Database, report: DispatchReport, in_flight: int) -> None:
        self.database = database
        self.report = report
        self._slots = threading.BoundedSemaphore(max(1, in_flight))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="notifier-record")
        self._waiting: list[tuple[int, DeliveryChannel, int | None, datetime | None, Outcome]] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        # When each endpoint was last stamped healthy by this recorder (None: failing or
        # unknown), to skip an UPDATE per send: only the recording thread uses it.
        self._healthy_at: dict[int, datetime | None] = {}
        self.broken = threading.Event()
        #: Endpoints that answered 410 Gone in this run (disabled once recorded): the rest
        #: of the run, including a batch claimed before the answer came, sends them nothing.
        self.gone: set[int] = set()

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Wait for room to send; yields False when a record failed and nothing may be sent."""
        self._slots.acquire()
        handed_over = False
        try:
            if self.broken.is_set():
                yield False
                return
            yield True
            handed_over = True
        finally:
            if not handed_over:
                self._slots.release()

    def record(self, delivery: Delivery, endpoint: DeliveryEndpoint, outcome: Outcome) -> None:
        """Record ``outcome`` in the background; frees the slot taken for its send."""
        # What the batch's read said of the endpoint's health, for the first send to it.
        if outcome.result == "gone":
            self.gone.add(endpoint.id)
        healthy_at = endpoint.last_success_at if endpoint.failing_since is None else None
        with self._lock:
            self._waiting.append(
                (delivery.id, delivery.channel, delivery.endpoint_id, healthy_at, outcome)
            )
        self._pool.submit(self._record_waiting)

    def _record_waiting(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        if not group:  # an earlier call took them
            return
        try:
            now = utcnow()
            stamp = self._to_stamp(group, now)
            failing = {e for _, _, e, _, o in group if e is not None and o.result != "succeeded"}
            with self.database.session_scope(immediate=True) as db:
                _lock_endpoints(db, stamp | failing)
                succeeded = [(i, c, o) for i, c, _, _, o in group if o.result == "succeeded"]
                if succeeded:
                    self.report.add("succeeded", _record_successes(db, succeeded, now, stamp))
                for delivery_id, _, _, _, outcome in group:
                    if outcome.result != "succeeded":
                        fresh = db.get(Delivery, delivery_id)
                        if fresh is not None:
                            self.report.add(record(db, fresh, outcome, now))
            for endpoint_id in stamp:
                self._healthy_at[endpoint_id] = now
        except BaseException as exc:
            if self._error is None:
                self._error = exc
            self.broken.set()
        finally:
            for _ in group:
                self._slots.release()

    def _to_stamp(
        self,
        group: list[tuple[int, DeliveryChannel, int | None, datetime | None, Outcome]],
        now: datetime,
    ) -> set[int]:
        """The endpoints whose health stamp this group renews (not stamped lately)."""
        stamp: set[int] = set()
        for _, _, endpoint_id, read_healthy_at, outcome in group:
            if endpoint_id is None:
                continue
            healthy_at = self._healthy_at.get(endpoint_id, read_healthy_at)
            if outcome.result != "succeeded":
                self._healthy_at[endpoint_id] = None
            elif healthy_at is None or now - healthy_at >= SUCCESS_STAMP_EVERY:
                stamp.add(endpoint_id)
        return stamp

    def finish(self) -> None:
        """Wait for every record; raise the first that failed."""
        self._pool.shutdown(wait=True)
        if self._error is not None:
            raise self._error


def _lock_endpoints(db: Session, ids: set[int]) -> None:
    """Lock the endpoint rows a record will change, first and in id order (PostgreSQL).

    Two dispatchers recording groups that touch the same endpoints in opposite order (one
    stamps A then marks B failing, the other stamps B then marks A failing) would otherwise
    each hold the row the other waits for: a deadlock, one record lost and its sends
    repeated. Taken in one order up front, the second waits for the first instead.

    ``FOR NO KEY UPDATE``, the lock an UPDATE of these columns takes anyway: it leaves
    alone the key-share lock that an INSERT of a delivery takes on its endpoint (the
    foreign key check), so an API write queueing deliveries never waits for a record, nor
    a record for it, in whatever order each meets the rows (``FOR UPDATE`` blocked those
    inserts and deadlocked with them).
    """
    if ids and db.get_bind().dialect.name == "postgresql":
        db.execute(
            select(DeliveryEndpoint.id)
            .where(DeliveryEndpoint.id.in_(sorted(ids)))
            .order_by(DeliveryEndpoint.id)
            .with_for_update(key_share=True)
        )


def replay(db: Session, delivery_id: int) -> Delivery | None:
    """Send a failed delivery again, from a fresh retry schedule, with the same webhook-id."""
    delivery = db.get(Delivery, delivery_id)
    if delivery is None:
        return None
    if delivery.status is DeliveryStatus.FAILED:
        _requeue(delivery)
        mark_queued(db, 1)
    return delivery


def replay_failed_since(db: Session, since: datetime, *, endpoint_id: int | None = None) -> int:
    """Replay every failed delivery created since ``since``; returns how many."""
    query = select(Delivery).where(
        Delivery.status == DeliveryStatus.FAILED, Delivery.created_at >= since
    )
    if endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    count = 0
    for delivery in db.scalars(query):
        _requeue(delivery)
        count += 1
    mark_queued(db, count)
    return count


def _requeue(delivery: Delivery) -> None:
    delivery.status = DeliveryStatus.PENDING
    delivery.attempt_count = 0
    delivery.next_attempt_at = utcnow()
    delivery.claimed_until = None
    delivery.finished_at = None
