"""Reminders: an open critical alert nobody acknowledged is emailed again every interval.

A reminder goes to the mailboxes that were emailed about the alert episode (its opening,
regression or escalation), in the episode's thread. Each (alert, interval) is claimed by a
row in ``notifier_alert_reminders`` inserted in the transaction that queues the emails, so a beat
that ticks twice, or two beats at once, queue one reminder: the second insert waits for the
first transaction and then finds the key taken.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import outbox
from .alerts import snoozed_at
from .enums import DeliveryChannel, DeliveryEvent, Severity
from .models import AdminUser, AlertReminder, Delivery, DeliveryEndpoint, PlatformAlert
from .types import utcnow

__all__ = [
    "DEFAULT_REPEAT_INTERVAL",
    "claim_reminder",
    "queue_reminders",
    "remind_episode",
    "reminder_due",
]

#: How often an unacknowledged critical alert is emailed again (``repeat_interval``).
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)

_EPISODE_EMAILS = (
    DeliveryEvent.ALERT_OPENED,
    DeliveryEvent.ALERT_REGRESSED,
    DeliveryEvent.ALERT_ESCALATED,
)


def reminder_due(anchor: datetime, now: datetime, interval: timedelta) -> datetime | None:
    """The start of the interval a reminder is owed for at ``now``, or None before the first.

    Intervals count from ``anchor`` (the alert's opening, or its last escalation); a beat
    that missed several intervals owes only the current one.
    """
    elapsed = now - anchor
    if elapsed < interval:
        return None
    return anchor + (elapsed // interval) * interval


def queue_reminders(
    db: Session,
    *,
    repeat_interval: timedelta = DEFAULT_REPEAT_INTERVAL,
    now: datetime | None = None,
) -> int:
    """Claim and queue this interval's reminder of every alert that owes one; returns emails.

    Owed by an open, critical, unacknowledged alert that is not snoozed, once per
    ``repeat_interval`` counted from its opening or last escalation. Does not commit; on
    SQLite give it an immediate transaction (``Database.session_scope(immediate=True)``) so
    a second beat waits for the first instead of failing on the lock.
    """
    if repeat_interval <= timedelta(0):
        raise ValueError("repeat_interval must be positive")
    now = now or utcnow()
    anchor = func.coalesce(PlatformAlert.escalated_at, PlatformAlert.first_occurred_at)
    alerts = db.scalars(
        select(PlatformAlert)
        .where(
            PlatformAlert.is_resolved.is_(False),
            PlatformAlert.severity == Severity.CRITICAL,
            PlatformAlert.acknowledged_at.is_(None),
            PlatformAlert.held_back_by_id.is_(None),  # its root cause speaks for it
            ~snoozed_at(now),
            anchor <= now - repeat_interval,
        )
        .order_by(PlatformAlert.id)
    ).all()
    queued = 0
    for alert in alerts:
        due = reminder_due(alert.escalated_at or alert.first_occurred_at, now, repeat_interval)
        if due is not None and claim_reminder(db, alert.id, due, now):
            queued += remind_episode(db, alert, now, outbox.alert_payload(alert))
    return queued


def claim_reminder(db: Session, alert_id: int, due: datetime, now: datetime) -> bool:
    """Take the reminder of ``alert_id`` due at ``due``; False when another tick has it.

    The insert waits for a concurrent transaction holding the same key, then finds it taken.
    """
    insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(AlertReminder)
        .values(alert_id=alert_id, due_at=due, created_at=now)
        .on_conflict_do_nothing()
        .returning(AlertReminder.alert_id)
    )
    return db.scalar(statement) is not None


def remind_episode(
    db: Session, alert: PlatformAlert, now: datetime, payload: dict[str, Any]
) -> int:
    """Queue the reminder for the episode's email recipients (active admins, enabled rules)."""
    rows = db.execute(
        select(Delivery.endpoint_id, Delivery.recipient_user_id)
        .join(AdminUser, AdminUser.id == Delivery.recipient_user_id)
        .join(DeliveryEndpoint, DeliveryEndpoint.id == Delivery.endpoint_id)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.channel == DeliveryChannel.EMAIL,
            Delivery.event_type.in_(_EPISODE_EMAILS),
            AdminUser.is_active,
            DeliveryEndpoint.is_enabled,
        )
        .distinct()
        .order_by(Delivery.endpoint_id, Delivery.recipient_user_id)
    ).all()
    recipients: dict[int, list[int]] = {}
    for endpoint_id, user_id in rows:
        recipients.setdefault(endpoint_id, []).append(user_id)
    event_id = outbox.new_id("evt")
    queued = 0
    for endpoint_id, users in recipients.items():
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        if endpoint is not None:
            queued += outbox.queue(
                db,
                endpoint,
                DeliveryEvent.ALERT_REMINDER,
                event_id,
                payload,
                now,
                alert_id=alert.id,
                recipients=users,
            )
    return queued
