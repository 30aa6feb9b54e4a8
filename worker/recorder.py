"""Record one event in the notifier store: count its alert, then notify unless cooling down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from notifier import AdminNotification, admin_notification_service, platform_alert_service
from notifier.types import utcnow

from .events import Event

Outcome = Literal["duplicate", "notified", "counted"]

_ACTIONS = {
    "notify_import_failure",
    "notify_order_sync_failure",
    "notify_order_exception",
    "notify_critical_error",
    "create_notification",
}


def record_event(db: Session, event: Event, *, cooldown: timedelta) -> Outcome:
    """Record ``event`` in ``db`` (the caller commits); idempotent on ``event.key``.

    The alert upsert runs first: it locks the alert's row (PostgreSQL) or the database
    (SQLite) until commit, so concurrent recorders of one fingerprint take turns and the
    cooldown check below sees every notification committed before it.
    """
    if event.action not in _ACTIONS:
        raise ValueError(f"unknown event action {event.action!r}")
    if _exists(db, event.key):
        return "duplicate"
    if event.alert is not None:
        alert, created = platform_alert_service.create_or_increment_alert(db, **event.alert)
        if not created and _notified_recently(db, alert.fingerprint, cooldown):
            return "counted"
    method: Any = getattr(admin_notification_service, event.action)
    method(db, **event.params, dedup_key=event.key)
    return "notified"


def _exists(db: Session, key: str) -> bool:
    found = db.scalar(select(AdminNotification.id).where(AdminNotification.dedup_key == key))
    return found is not None


def _notified_recently(db: Session, fingerprint: str, cooldown: timedelta) -> bool:
    if cooldown <= timedelta(0):
        return False
    meta = AdminNotification.notification_metadata
    found = db.scalar(
        select(AdminNotification.id)
        .where(
            AdminNotification.created_at >= utcnow() - cooldown,
            or_(
                meta["alert_fingerprint"].as_string() == fingerprint,
                meta[("details", "alert_fingerprint")].as_string() == fingerprint,
            ),
        )
        .limit(1)
    )
    return found is not None
