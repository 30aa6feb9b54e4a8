"""The numbers on the statistics cards: one place that asks each service for its counts."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from .alerts import platform_alert_service
from .notifications import admin_notification_service


def get_statistics(
    db: Session, *, tz: tzinfo | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Unread notifications plus the alert counts (see ``PlatformAlertService.get_statistics``).

    ``unread_notifications`` is exact up to ``keyset.UNREAD_CAP``; past it, the cap with
    ``unread_notifications_exact`` False.
    """
    unread = admin_notification_service.get_unread_count(db)
    return {
        "unread_notifications": unread.value,
        "unread_notifications_exact": unread.exact,
        **platform_alert_service.get_statistics(db, tz=tz, now=now),
    }


__all__ = ["get_statistics"]
