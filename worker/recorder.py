"""Record one event in the notifier store: count its alert, then notify unless cooling down."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from notifier import (
    AdminNotification,
    Database,
    PlatformAlert,
    Severity,
    admin_notification_service,
    platform_alert_service,
)
from notifier.alerts import default_fingerprint
from notifier.types import utcnow

from .events import Event

logger = logging.getLogger("notifier.worker")

Outcome = Literal["duplicate", "notified", "counted"]

_ACTIONS = {
    "notify_import_failure",
    "notify_order_sync_failure",
    "notify_order_exception",
    "notify_critical_error",
    "create_notification",
}


def record_event(
    db: Session,
    event: Event,
    *,
    cooldown: timedelta,
    check_duplicate: bool = True,
    notified: dict[str, bool] | None = None,
    counted: tuple[PlatformAlert, bool] | None = None,
) -> Outcome:
    """Record ``event`` in ``db`` (the caller commits); idempotent on ``event.key``.

    ``check_duplicate=False`` skips the lookup of ``event.key`` for a caller that already
    looked it up with :func:`existing_keys`. ``notified`` caches, for one transaction,
    which fingerprints were notified within the cooldown, so a storm in one batch costs
    one lookup. ``counted`` is the ``(alert, created)`` of an upsert the caller already made
    for this event (see :func:`count_alerts`).

    The alert upsert runs first: it locks the alert's row (PostgreSQL) or the database
    (SQLite) until commit, so concurrent recorders of one fingerprint take turns and the
    cooldown check below sees every notification committed before it.
    """
    if event.action not in _ACTIONS:
        raise ValueError(f"unknown event action {event.action!r}")
    if check_duplicate and existing_keys(db, [event.key]):
        return "duplicate"
    cache = {} if notified is None else notified
    fingerprint = None
    if event.alert is not None:
        alert, created = counted or platform_alert_service.create_or_increment_alert(
            db, **event.alert
        )
        fingerprint = alert.fingerprint
        if not created:
            if fingerprint not in cache:
                cache[fingerprint] = _notified_recently(db, fingerprint, cooldown)
            if cache[fingerprint]:
                return "counted"
    method: Any = getattr(admin_notification_service, event.action)
    method(db, **event.params, dedup_key=event.key)
    if fingerprint is not None and cooldown > timedelta(0):
        cache[fingerprint] = True
    return "notified"


def count_alerts(db: Session, events: list[Event]) -> dict[int, tuple[PlatformAlert, bool]]:
    """Count the alerts of ``events`` with one upsert per fingerprint; by event position.

    The result is what one upsert per event, in order, would have left: the count grows by
    the number of events, the severity is the highest, the stores and systems are the
    union and the description is the last event's. The first event of a fingerprint gets
    ``created`` as the upsert said; the others count as increments. Fingerprints are
    upserted in sorted order, so two recorders lock alert rows in the same order.
    """
    groups: dict[str, list[int]] = {}
    for position, event in enumerate(events):
        if event.alert is not None:
            groups.setdefault(_fingerprint(event.alert), []).append(position)
    counted: dict[int, tuple[PlatformAlert, bool]] = {}
    for fingerprint in sorted(groups):
        positions = groups[fingerprint]
        alerts = [events[i].alert for i in positions]
        merged = dict(alerts[0] or {})
        merged["fingerprint"] = fingerprint
        merged["severity"] = max(
            (Severity(a["severity"]) for a in alerts if a), key=lambda s: s.rank
        ).value
        for field in ("affected_stores", "affected_systems"):
            merged[field] = sorted({item for a in alerts if a for item in a.get(field) or []})
        merged["description"] = next(
            (a["description"] for a in reversed(alerts) if a and a.get("description")), None
        )
        alert, created = platform_alert_service.create_or_increment_alert(
            db, **merged, occurrences=len(positions)
        )
        for n, position in enumerate(positions):
            counted[position] = (alert, created and n == 0)
    return counted


def _fingerprint(alert: dict[str, Any]) -> str:
    return str(alert.get("fingerprint") or default_fingerprint(alert["alert_type"], alert["title"]))


def existing_keys(db: Session, keys: list[str]) -> set[str]:
    """The dedup keys among ``keys`` that a notification already carries."""
    if not keys:
        return set()
    found = db.scalars(
        select(AdminNotification.dedup_key).where(AdminNotification.dedup_key.in_(keys))
    )
    return {key for key in found if key is not None}


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


def record_batch(database: Database, events: list[Event], *, cooldown: timedelta) -> list[bool]:
    """Record ``events``; True for each one recorded, False for each that never can be.

    The fast path is one transaction for the whole batch. If an event fails for a reason
    other than the database being unreachable (bad data), the batch is redone with one
    savepoint per event, so only that event is set aside. An unreachable or stuck database
    raises, and the caller keeps every event for a later attempt.
    """
    try:
        with database.session_scope() as db:
            seen = existing_keys(db, [event.key for event in events])
            fresh = []
            for event in events:
                if event.key not in seen:
                    fresh.append(event)
                    seen.add(event.key)
            counted = count_alerts(db, fresh)
            notified: dict[str, bool] = {}
            for position, event in enumerate(fresh):
                record_event(
                    db,
                    event,
                    cooldown=cooldown,
                    check_duplicate=False,
                    notified=notified,
                    counted=counted.get(position),
                )
        return [True] * len(events)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.warning("notifier: a batch of %d events failed; retrying one by one", len(events))
    outcomes: list[bool] = []
    with database.session_scope() as db:
        for event in events:
            try:
                with db.begin_nested():
                    record_event(db, event, cooldown=cooldown)
                outcomes.append(True)
            except (OperationalError, InterfaceError):
                raise
            except Exception:
                logger.exception("notifier: event %s can never be recorded", event.key)
                outcomes.append(False)
    return outcomes
