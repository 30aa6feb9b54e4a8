"""The outbox: delivery rows written in the transaction of the change that causes them.

Nothing is sent from here. A notification or alert change calls one of the ``on_*``
functions with the caller's session, before the caller commits, so the deliveries commit or
roll back with the change; a dispatcher (``notifier.delivery.dispatch``) sends them afterwards. An
endpoint's filter decides whether it gets an event; an email endpoint fans out to one row per
active admin, so each mailbox has its own retries and its own hourly cap, and each admin's
preferences (``notifier.preferences.rules``) decide whether that admin's row is written, held
until their quiet hours end, or left to their digest (which reads the tables, not rows).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import event, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from .enums import DeliveryChannel, DeliveryEvent, Priority, Severity
from .models import AdminNotification, AdminUser, Delivery, DeliveryEndpoint, PlatformAlert
from .preferences.rules import Action, Channel, Event
from .preferences.store import cached_audience
from .types import utcnow

__all__ = [
    "DEFAULT_EMAIL_ENDPOINT_NAME",
    "EMAIL_ALERT_COOLDOWN",
    "ENDPOINT_ENABLED",
    "HOLD_DIGEST",
    "HOLD_QUIET",
    "KICK_SLOW_AFTER",
    "BackgroundKick",
    "Inhibitor",
    "alert_payload",
    "ensure_default_email_endpoint",
    "forget_endpoints",
    "kick_after_commit",
    "mark_queued",
    "matches",
    "new_id",
    "notification_payload",
    "on_alert",
    "on_notification",
    "queue",
    "queued_in",
    "recheck_held",
    "set_inhibitor",
    "symptom_of",
    "takes",
]

DEFAULT_EMAIL_ENDPOINT_NAME = "Admins by email"
#: The PostgreSQL advisory lock key under which the default email rule is created.
_EMAIL_RULE_LOCK = 0x6E6F7469666965  # "notifie"
#: At most one immediate email per alert fingerprint in this window (a flapping alert that
#: resolves and regresses over and over stays one email).
EMAIL_ALERT_COOLDOWN = timedelta(minutes=15)

log = logging.getLogger(__name__)
#: ``Delivery.hold``: held by the admin's quiet hours (sent folded together at their end).
HOLD_QUIET = "quiet"
#: ``Delivery.hold``: over the hourly cap, waiting for the admin's digest.
HOLD_DIGEST = "digest"

#: Whether any delivery endpoint is enabled, as a column a writer's own statement returns
#: (``create_notification``'s INSERT ... RETURNING does): read in the same snapshot as a
#: separate SELECT would be, so never stale, and when False the outbox has nothing to read.
#: A one-row transaction then makes one round trip, not two, before its COMMIT.
ENDPOINT_ENABLED = exists().where(DeliveryEndpoint.is_enabled).label("notifier_endpoint_enabled")

#: The events a channel takes, for the channels that do not take every event. PagerDuty
#: takes alerts only: an incident per alert fingerprint, which a notification has not.
#: An acknowledgment goes where it changes state (a PagerDuty incident, a webhook
#: receiver's own copy); to chat, email or Apprise it would tell the room where it was
#: just made what the acknowledger did, and reminders already stop for it.
_CHANNEL_EVENTS = {
    DeliveryChannel.PAGERDUTY: frozenset(
        {
            DeliveryEvent.ALERT_OPENED,
            DeliveryEvent.ALERT_REGRESSED,
            DeliveryEvent.ALERT_ESCALATED,
            DeliveryEvent.ALERT_ACKNOWLEDGED,
            DeliveryEvent.ALERT_RESOLVED,
            DeliveryEvent.ENDPOINT_TEST,
        }
    ),
}
_ACKNOWLEDGED_TO = frozenset({DeliveryChannel.WEBHOOK, DeliveryChannel.PAGERDUTY})

_QUEUED = "notifier_deliveries_queued"
_SCOPES = "notifier_symptom_scopes"
_ENDPOINTS = "notifier_enabled_endpoints"
_PRIORITY_RANK = {priority: rank for rank, priority in enumerate(Priority)}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


class Inhibitor(Protocol):
    """Holds symptoms back while a root cause that explains them is open.

    The outbox asks it before queuing a symptom's events, the dispatcher before sending
    them; ``notifier.health.inhibition`` is the one implementation and installs itself.
    """

    def hold(
        self, db: Session, subject: PlatformAlert | AdminNotification, scopes: list[str]
    ) -> bool:
        """Mark ``subject`` held back if a root cause of ``scopes`` is open; whether it was."""

    def not_before(self, due: datetime) -> datetime:
        """When a symptom's delivery due at ``due`` may go (the race wait)."""

    def recheck(self, db: Session, rows: Sequence[Delivery]) -> set[int]:
        """Of claimed ``rows``, the ids now held back (removed from the outbox)."""

    def summary(self, db: Session, root: PlatformAlert) -> dict[str, Any] | None:
        """What a root cause held back, for its ``alert.resolved`` payload."""


_inhibitors: list[Inhibitor] = []


def set_inhibitor(inhibitor: Inhibitor) -> None:
    """Install the inhibitor (``notifier.health.inhibition`` does, once, when imported)."""
    _inhibitors[:] = [inhibitor]


class symptom_of:  # lower case: used like a function, ``with symptom_of(db, scopes):``
    """Within this block, alerts and notifications recorded in ``db`` are symptoms of ``scopes``.

    A symptom is recorded and shown as usual; while a root-cause alert whose ``explains``
    is one of ``scopes`` is open it is marked held back by it and nothing is queued.
    (A class, not a generator: the failure path enters one per report, mostly with none.)
    """

    __slots__ = ("_db", "_previous", "_scopes")

    def __init__(self, db: Session, scopes: Sequence[str]) -> None:
        self._db = db
        self._scopes = list(scopes) or None
        self._previous: list[str] | None = None

    def __enter__(self) -> None:
        info = self._db.info
        self._previous = info.get(_SCOPES)
        info[_SCOPES] = self._scopes

    def __exit__(self, *_: object) -> None:
        self._db.info[_SCOPES] = self._previous


def _symptom_held(db: Session, subject: PlatformAlert | AdminNotification) -> bool:
    scopes: list[str] | None = db.info.get(_SCOPES)
    return bool(scopes and _inhibitors and _inhibitors[0].hold(db, subject, scopes))


def recheck_held(db: Session, rows: Sequence[Delivery]) -> set[int]:
    """Of claimed ``rows``, the ids a root cause opened since now holds back (and removed)."""
    if not _inhibitors or not any(row.scopes for row in rows):
        return set()
    return _inhibitors[0].recheck(db, rows)


def notification_payload(notification: AdminNotification) -> dict[str, Any]:
    """The notification as the API returns it."""
    return {
        "id": notification.id,
        "type": str(notification.type),
        "priority": str(notification.priority),
        "title": notification.title,
        "message": notification.message,
        "is_read": notification.is_read,
        "read_at": _iso(notification.read_at),
        "read_by_user_id": notification.read_by_user_id,
        "action_required": notification.action_required,
        "action_url": notification.action_url,
        "notification_metadata": dict(notification.notification_metadata or {}),
        "store_id": notification.store_id,
        "dedup_key": notification.dedup_key,
        "alert_fingerprint": notification.alert_fingerprint,
        "created_at": _iso(notification.created_at),
        "held_back_by_id": notification.held_back_by_id,
    }


def alert_payload(alert: PlatformAlert) -> dict[str, Any]:
    """The platform alert as the API returns it."""
    return {
        "id": alert.id,
        "alert_type": str(alert.alert_type),
        "severity": str(alert.severity),
        "title": alert.title,
        "description": alert.description,
        "affected_stores": list(alert.affected_stores or []),
        "affected_systems": list(alert.affected_systems or []),
        "fingerprint": alert.fingerprint,
        "occurrence_count": alert.occurrence_count,
        "first_occurred_at": _iso(alert.first_occurred_at),
        "last_occurred_at": _iso(alert.last_occurred_at),
        "is_resolved": alert.is_resolved,
        "resolved_at": _iso(alert.resolved_at),
        "resolved_by_user_id": alert.resolved_by_user_id,
        "resolution_notes": alert.resolution_notes,
        "alert_metadata": dict(alert.alert_metadata or {}),
        "created_at": _iso(alert.created_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by_user_id": alert.acknowledged_by_user_id,
        "snoozed_until": _iso(alert.snoozed_until),
        "escalated_at": _iso(alert.escalated_at),
        "owner": alert.owner,
        "runbook": alert.runbook,
        "escalation_step": alert.escalation_step,
        "escalation_step_at": _iso(alert.escalation_step_at),
        "explains": alert.explains,
        "held_back_by_id": alert.held_back_by_id,
        "held_back_count": alert.held_back_count or 0,
        "recovery_task": alert.recovery_task,
    }


def takes(channel: DeliveryChannel, event: DeliveryEvent) -> bool:
    """Whether a ``channel`` endpoint ever takes ``event`` (whatever its filter says)."""
    if event is DeliveryEvent.ALERT_ACKNOWLEDGED and channel not in _ACKNOWLEDGED_TO:
        return False
    allowed = _CHANNEL_EVENTS.get(channel)
    return allowed is None or event in allowed


def matches(
    endpoint: DeliveryEndpoint,
    event: DeliveryEvent,
    *,
    priority: Priority | None = None,
    severity: Severity | None = None,
    notification_type: str | None = None,
    alert_type: str | None = None,
    store_ids: list[int] | tuple[int, ...] = (),
    owner: str | None = None,
) -> bool:
    """Whether ``endpoint``'s filter lets this event through.

    Each part of the filter narrows one thing and an empty one allows any: ``event_types``
    the events, ``notification_types`` and ``min_priority`` the notifications,
    ``alert_types`` and ``min_severity`` the alerts, ``store_ids`` the stores concerned,
    ``owners`` the owners (an endpoint with owners takes only what those owners own).
    """
    if not takes(endpoint.channel, event):
        return False
    if endpoint.owners and owner not in endpoint.owners:
        return False
    if endpoint.event_types and str(event) not in endpoint.event_types:
        return False
    if priority is not None:
        if (
            endpoint.min_priority
            and _PRIORITY_RANK[priority] < _PRIORITY_RANK[endpoint.min_priority]
        ):
            return False
        if endpoint.notification_types and notification_type not in endpoint.notification_types:
            return False
    if severity is not None:
        if endpoint.min_severity and severity.rank < Severity(endpoint.min_severity).rank:
            return False
        if endpoint.alert_types and alert_type not in endpoint.alert_types:
            return False
    return not endpoint.store_ids or bool(set(endpoint.store_ids) & set(store_ids))


def _enabled_endpoints(db: Session) -> list[DeliveryEndpoint]:
    # Read once per session: a batch of failures must not read the endpoints per row.
    # Sessions here are short (one transaction, one request); the endpoint service drops
    # the cached list when it changes an endpoint. In id order: the deliveries queued from
    # it take their endpoints' rows (the foreign key's share lock) in the order every
    # other path locks them, never in whatever order the table happens to be stored.
    cached: list[DeliveryEndpoint] | None = db.info.get(_ENDPOINTS)
    if cached is None:
        enabled = select(DeliveryEndpoint).where(DeliveryEndpoint.is_enabled)
        cached = list(db.scalars(enabled.order_by(DeliveryEndpoint.id)))
        db.info[_ENDPOINTS] = cached
    return [endpoint for endpoint in cached if endpoint.is_enabled]


def forget_endpoints(db: Session) -> None:
    """Drop the session's cached endpoint list (after an endpoint was changed)."""
    db.info.pop(_ENDPOINTS, None)


def new_id(prefix: str) -> str:
    """A fresh id: ``prefix``, an underscore and 32 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}"


def queue(
    db: Session,
    endpoint: DeliveryEndpoint,
    event: DeliveryEvent,
    event_id: str,
    payload: dict[str, Any],
    occurred_at: datetime,
    *,
    notification_id: int | None = None,
    alert_id: int | None = None,
    facts: Event | None = None,
    recipients: Sequence[int] | None = None,
) -> int:
    """Add ``event`` for ``endpoint`` (one row per active admin for email); returns rows.

    For email, ``facts`` (the notification's or alert's type and level) go through each
    admin's preferences: no row when that admin turned it off or takes it in the digest, a
    row held until the end of their quiet hours, or a row due now. Without ``facts`` (an
    endpoint test, a reminder) every admin addressed gets one. ``recipients``: for email,
    only these admins (a reminder goes to whoever was emailed); else every active admin.
    """
    scopes: list[str] | None = db.info.get(_SCOPES)
    now_due = occurred_at
    if scopes and _inhibitors:  # a symptom waits a moment for a root cause to turn up
        now_due = _inhibitors[0].not_before(occurred_at)
    rows: list[tuple[int | None, datetime, str | None]] = [(None, now_due, None)]
    if endpoint.channel is DeliveryChannel.EMAIL:
        admins = list(
            recipients
            if recipients is not None
            else db.scalars(select(AdminUser.id).where(AdminUser.is_active).order_by(AdminUser.id))
        )
        rows = [(admin, now_due, None) for admin in admins]
        if facts is not None:
            routed = cached_audience(db, admins).route(facts, utcnow(), Channel.EMAIL)
            rows = []
            for admin in admins:
                routing = routed[admin]
                if routing.action is Action.IMMEDIATE:
                    rows.append((admin, now_due, None))
                elif routing.action is Action.HELD and routing.until is not None:
                    rows.append((admin, max(routing.until, now_due), HOLD_QUIET))
    for recipient, due, hold in rows:
        db.add(
            Delivery(
                message_id=new_id("msg"),
                event_id=event_id,
                event_type=event,
                channel=endpoint.channel,
                endpoint_id=endpoint.id,
                recipient_user_id=recipient,
                notification_id=notification_id,
                alert_id=alert_id,
                payload=payload,
                occurred_at=occurred_at,
                next_attempt_at=due,
                hold=hold,
                scopes=scopes,
            )
        )
    mark_queued(db, len(rows))
    return len(rows)


def mark_queued(db: Session, count: int) -> None:
    """Note that ``count`` deliveries became due in this session (queued or replayed)."""
    db.info[_QUEUED] = db.info.get(_QUEUED, 0) + count


def queued_in(db: Session) -> int:
    """How many deliveries this session queued so far (to wake a dispatcher after commit)."""
    return int(db.info.get(_QUEUED, 0))


def kick_after_commit(factory: sessionmaker[Session], kick: Callable[[], object]) -> None:
    """Call ``kick`` after each commit of a ``factory`` session that queued deliveries.

    For a process that can start a dispatcher, e.g. by sending a Celery task; nothing is
    sent from inside the transaction. The kick runs on a background thread (see
    :class:`~notifier.outbox.BackgroundKick`), so a slow broker never holds up the request
    that committed. A kick that fails is logged: the periodic sweep sends the rows anyway.
    """
    event.listen(factory, "after_commit", partial(_kick_if_queued, BackgroundKick(kick)))
    event.listen(factory, "after_rollback", _forget_queued)


def _kick_if_queued(kick: Callable[[], object], session: Session) -> None:
    if session.info.pop(_QUEUED, 0):
        try:
            kick()
        except Exception:
            log.exception("notifier: could not start a dispatcher; the next sweep sends them")


def _forget_queued(session: Session) -> None:
    session.info.pop(_QUEUED, None)


def on_notification(
    db: Session, notification: AdminNotification, *, endpoint_enabled: bool = True
) -> int:
    """Queue ``notification.created`` for every endpoint whose filter takes it.

    ``endpoint_enabled``: False when the caller's own statement returned
    :data:`ENDPOINT_ENABLED` false (no endpoint is enabled): nothing is read or queued.
    """
    if _symptom_held(db, notification):
        return 0
    if not endpoint_enabled:
        return 0
    db.flush()  # the payload carries the id
    endpoints = [
        endpoint
        for endpoint in _enabled_endpoints(db)
        if matches(
            endpoint,
            DeliveryEvent.NOTIFICATION_CREATED,
            priority=notification.priority,
            notification_type=str(notification.type),
            store_ids=[notification.store_id] if notification.store_id is not None else [],
            owner=(notification.notification_metadata or {}).get("owner"),
        )
    ]
    if not endpoints:
        return 0
    payload = notification_payload(notification)
    event_id = new_id("evt")
    occurred_at = notification.created_at or utcnow()
    created = 0
    for endpoint in endpoints:
        created += queue(
            db,
            endpoint,
            DeliveryEvent.NOTIFICATION_CREATED,
            event_id,
            payload,
            occurred_at,
            notification_id=notification.id,
            facts=Event("notification", str(notification.type), str(notification.priority)),
        )
    return created


def _emailed_recently(db: Session, alert: PlatformAlert, now: datetime) -> bool:
    recent = db.scalar(
        select(Delivery.id)
        .join(PlatformAlert, PlatformAlert.id == Delivery.alert_id)
        .where(
            Delivery.channel == DeliveryChannel.EMAIL,
            PlatformAlert.fingerprint == alert.fingerprint,
            PlatformAlert.id != alert.id,
            Delivery.event_type.in_([DeliveryEvent.ALERT_OPENED, DeliveryEvent.ALERT_REGRESSED]),
            Delivery.created_at > now - EMAIL_ALERT_COOLDOWN,
        )
        .limit(1)
    )
    return recent is not None


def on_alert(db: Session, alert: PlatformAlert, event: DeliveryEvent) -> int:
    """Queue an alert event (opened, regressed, acknowledged, ...) for each endpoint taking it.

    Nothing for a symptom held back (see :func:`symptom_of`); a root cause's
    ``alert.resolved`` carries the summary of what it held back (``held_back``).
    """
    db.flush()
    if alert.held_back_by_id is not None and event is DeliveryEvent.ALERT_RESOLVED:
        return 0  # its channels never heard of it: the root cause's summary named it
    if event is not DeliveryEvent.ALERT_RESOLVED and _symptom_held(db, alert):
        return 0
    now = utcnow()
    endpoints = [
        endpoint
        for endpoint in _enabled_endpoints(db)
        if matches(
            endpoint,
            event,
            severity=alert.severity,
            alert_type=str(alert.alert_type),
            store_ids=[s for s in alert.affected_stores or [] if isinstance(s, int)],
            owner=alert.owner,
        )
    ]
    if any(e.channel is DeliveryChannel.EMAIL for e in endpoints) and _emailed_recently(
        db, alert, now
    ):
        endpoints = [e for e in endpoints if e.channel is not DeliveryChannel.EMAIL]
    if not endpoints:
        return 0
    payload = alert_payload(alert)
    if event is DeliveryEvent.ALERT_RESOLVED and alert.explains and _inhibitors:
        summary = _inhibitors[0].summary(db, alert)
        if summary is not None:
            payload["held_back"] = summary
    event_id = new_id("evt")
    occurred_at = (alert.resolved_at if event is DeliveryEvent.ALERT_RESOLVED else None) or now
    created = 0
    for endpoint in endpoints:
        created += queue(
            db,
            endpoint,
            event,
            event_id,
            payload,
            occurred_at,
            alert_id=alert.id,
            facts=Event("alert", str(alert.alert_type), str(alert.severity)),
        )
    return created


def ensure_default_email_endpoint(db: Session) -> DeliveryEndpoint:
    """The default rule once SMTP is set: every active admin is emailed critical events.

    Created once (admins may then edit its filter or disable it like any endpoint).
    """
    email = select(DeliveryEndpoint).where(DeliveryEndpoint.channel == DeliveryChannel.EMAIL)
    existing = db.scalar(email.limit(1))
    if existing is not None:
        return existing
    if db.get_bind().dialect.name == "postgresql":
        # Two dispatchers starting at once would each add one, and every admin would get
        # each email twice: the second waits here for the first's commit, then sees it.
        db.execute(select(func.pg_advisory_xact_lock(_EMAIL_RULE_LOCK)))
        existing = db.scalar(email.limit(1))
        if existing is not None:
            return existing
    endpoint = DeliveryEndpoint(
        name=DEFAULT_EMAIL_ENDPOINT_NAME,
        channel=DeliveryChannel.EMAIL,
        url="mailto:admins",
        event_types=[
            str(DeliveryEvent.NOTIFICATION_CREATED),
            str(DeliveryEvent.ALERT_OPENED),
            str(DeliveryEvent.ALERT_REGRESSED),
            str(DeliveryEvent.ALERT_ESCALATED),
        ],
        min_priority=Priority.CRITICAL,
        min_severity=Severity.CRITICAL,
        notification_types=[],
        alert_types=[],
        store_ids=[],
    )
    db.add(endpoint)
    db.flush()
    forget_endpoints(db)
    return endpoint


# Kicks that never hold up the commit that asked for them.

#: A kick still running after this many seconds is logged (a broker that hangs, say).
KICK_SLOW_AFTER = 10.0


class BackgroundKick:
    """Call ``kick`` on a background thread; calling this object returns at once.

    At most one thread runs the kick and at most one more call waits behind it. A kick
    that raises is logged; one that runs longer than ``slow_after`` seconds is logged when
    the next request finds it still running, and again when it ends.
    """

    def __init__(self, kick: Callable[[], object], *, slow_after: float = KICK_SLOW_AFTER) -> None:
        self.kick = kick
        self.slow_after = slow_after
        self._lock = threading.Lock()
        self._pending = False
        self._started: float | None = None  # when the running kick began; None: idle
        self._warned = False
        self._pid = os.getpid()

    def __call__(self) -> None:
        """Ask for a kick: now if none runs, else once more after the one running."""
        if self._pid != os.getpid():
            # A forked child (a prefork worker, a preloading web server): the parent's thread
            # is not here, and its lock may have been copied held.
            self._lock = threading.Lock()
            self._pid, self._started, self._pending = os.getpid(), None, False
        with self._lock:
            self._pending = True
            if self._started is not None:
                running = time.monotonic() - self._started
                if running > self.slow_after and not self._warned:
                    self._warned = True
                    log.warning(
                        "notifier: the delivery kick has been running for %.0f s; later "
                        "commits wait for it (the periodic sweep sends their deliveries)",
                        running,
                    )
                return
            self._started = time.monotonic()
        threading.Thread(target=self._run, name="notifier-kick", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._started = None
                    return
                self._pending = False
                self._started, self._warned = time.monotonic(), False
                started = self._started
            try:
                self.kick()
            except Exception:
                log.exception("notifier: could not start a dispatcher; the next sweep sends them")
            took = time.monotonic() - started
            if took > self.slow_after:
                log.warning("notifier: the delivery kick took %.1f s", took)
