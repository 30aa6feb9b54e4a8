"""The numbers on the statistics cards, under the name ``notifier`` exports."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from .alerts import platform_alert_service


def get_statistics(
    db: Session, *, tz: tzinfo | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The statistics cards' numbers, unread notifications included.

    The statistics cards' numbers: ``PlatformAlertService.get_statistics`` (unread
    notifications included), the name the web app and ``notifier`` export.
    """
    return platform_alert_service.get_statistics(db, tz=tz, now=now)


__all__ = ["get_statistics"]
