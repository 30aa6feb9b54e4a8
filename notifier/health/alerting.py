"""How a health check opens its alert once and resolves it by itself.

A check runs every few seconds and sees the same problem each time: the alert is opened
once (then only its description follows the facts), not counted once per tick; and when
the problem is gone, the alert is resolved through the one resolve path admins use too,
with a note that says the watcher did it.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..alerts import platform_alert_service
from ..enums import AlertType, Severity
from ..errors import AlreadyResolvedError
from ..models import PlatformAlert
from ..text import bounded, clip
from ..validation import MESSAGE_MAX, SYSTEM_NAME_MAX, TITLE_MAX


def open_alerts(db: Session, prefix: str) -> dict[str, PlatformAlert]:
    """The open alerts whose fingerprint starts with ``prefix``, by fingerprint."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.scalars(
        select(PlatformAlert).where(
            PlatformAlert.is_resolved.is_(False),
            PlatformAlert.fingerprint.like(f"{escaped}%", escape="\\"),
        )
    )
    return {alert.fingerprint: alert for alert in rows}


def keep_open(
    db: Session,
    current: PlatformAlert | None,
    *,
    fingerprint: str,
    alert_type: AlertType,
    severity: Severity,
    title: str,
    description: str,
    metadata: dict[str, Any],
    systems: Iterable[str],
) -> PlatformAlert:
    """Open the alert for ``fingerprint`` unless ``current`` is it; else refresh its text."""
    if current is not None:
        current.description = clip(description, MESSAGE_MAX)
        db.flush()
        return current
    alert, _ = platform_alert_service.create_or_increment_alert(
        db,
        alert_type=alert_type,
        severity=severity,
        title=clip(title, TITLE_MAX),
        fingerprint=bounded(fingerprint),
        description=clip(description, MESSAGE_MAX),
        affected_systems=sorted({clip(name, SYSTEM_NAME_MAX) for name in systems if name}),
        metadata=metadata,
    )
    return alert


def resolve_automatically(db: Session, alert: PlatformAlert, reason: str) -> None:
    """Resolve ``alert`` because the check no longer sees its problem (``reason`` says why)."""
    with suppress(AlreadyResolvedError):  # an admin (or another watcher) was first: fine
        platform_alert_service.resolve_alert(
            db, alert.id, user_id=None, resolution_notes=f"resolved automatically: {reason}"
        )
