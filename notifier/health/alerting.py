"""How job-health checks open and resolve their alerts: the one place both calls live.

Every check opens its alert through :func:`open_health_alert` (a deduplicated platform
alert, plus one bell notification the first time, so a miss is seen in the bell) and
resolves it through :func:`auto_resolve`. Holding an alert back behind another one (a
stopped scheduler hides its per-entry misses) is decided by the caller before it calls.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..alerts import platform_alert_service
from ..enums import AlertType, NotificationType, Priority, Severity
from ..errors import AlreadyResolvedError
from ..models import PlatformAlert
from ..notifications import admin_notification_service
from ..text import clip
from ..validation import FINGERPRINT_MAX, MESSAGE_MAX, TITLE_MAX

__all__ = ["auto_resolve", "open_alert_for", "open_health_alert"]

logger = logging.getLogger("notifier.health")


def open_alert_for(db: Session, fingerprint: str) -> PlatformAlert | None:
    """The open alert with this fingerprint, or None."""
    return db.scalars(
        select(PlatformAlert).where(
            PlatformAlert.fingerprint == fingerprint, PlatformAlert.is_resolved.is_(False)
        )
    ).first()


def open_health_alert(
    db: Session,
    *,
    fingerprint: str,
    title: str,
    description: str,
    severity: Severity = Severity.ERROR,
    alert_type: AlertType = AlertType.PERFORMANCE,
    metadata: dict[str, Any] | None = None,
) -> tuple[PlatformAlert, bool]:
    """Open (or count once more) a job-health alert; the first opening also lights the bell.

    Returns ``(alert, created)``. The bell notification is keyed by the alert's id, so an
    alert counted again never adds a second one.
    """
    fingerprint = fingerprint[:FINGERPRINT_MAX]
    alert, created = platform_alert_service.create_or_increment_alert(
        db,
        alert_type=alert_type,
        severity=severity,
        title=clip(title, TITLE_MAX),
        fingerprint=fingerprint,
        description=clip(description, MESSAGE_MAX),
        affected_systems=["scheduler"],
        metadata=metadata or {},
    )
    if created:
        admin_notification_service.create_notification(
            db,
            type=NotificationType.CRITICAL_ERROR,
            priority=Priority.HIGH,
            title=clip(title, TITLE_MAX),
            message=clip(description, MESSAGE_MAX),
            action_required=True,
            metadata={"job_health": fingerprint},
            dedup_key=f"health:{alert.id}"[:FINGERPRINT_MAX],
            alert_fingerprint=fingerprint,
        )
    return alert, created


def auto_resolve(db: Session, fingerprint: str, note: str) -> PlatformAlert | None:
    """Resolve the open alert with this fingerprint, by nobody, with ``note``; None if none."""
    alert = open_alert_for(db, fingerprint)
    if alert is None:
        return None
    try:
        return platform_alert_service.resolve_alert(
            db, alert.id, user_id=None, resolution_notes=clip(note, MESSAGE_MAX)
        )
    except AlreadyResolvedError:  # an admin (or another watcher) resolved it meanwhile
        return None
