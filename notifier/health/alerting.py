"""How job-health checks open and resolve their alerts: one way to open, one to resolve.

A check runs every few seconds and sees the same problem each time: :func:`open_health_alert`
opens the alert once (given the open one, only its description follows the facts) and
lights the bell the first time. When the problem is gone, :func:`resolve_automatically`
resolves it with a note that says so: with the run whose end answered it through the
recovery path (the run recorded, ``alert.resolved`` to the channels that had the alert),
else through the admins' resolve path (a root cause's summary of what it held back).
Whether a new alert is a symptom held back behind a root cause is the caller's
``symptom_of`` block.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..alerts import platform_alert_service
from ..enums import AlertType, NotificationType, Priority, Severity
from ..errors import AlreadyResolvedError
from ..models import PlatformAlert
from ..notifications import admin_notification_service
from ..text import bounded, clip
from ..validation import FINGERPRINT_MAX, MESSAGE_MAX, SYSTEM_NAME_MAX, TITLE_MAX
from .recovery import resolve_by_run

__all__ = [
    "FinishedRun",
    "open_alert_for",
    "open_alerts",
    "open_health_alert",
    "resolve_automatically",
]

logger = logging.getLogger("notifier.health")


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
    systems: Iterable[str] = ("scheduler",),
    explains: str | None = None,
    recovery_task: str | None = None,
    bell: bool = True,
    current: PlatformAlert | None = None,
) -> tuple[PlatformAlert, bool]:
    """Open (or count once more) a job-health alert; the first opening lights the bell.

    Returns ``(alert, created)``. With ``current`` (the open alert a check already holds
    for this fingerprint) nothing is counted: only its description follows the facts.
    The bell notification (``bell``) is keyed by the alert's id, so an alert counted
    again never adds a second one. ``explains`` makes it a root cause; ``recovery_task``
    lets that task's next success resolve it.
    """
    if current is not None:
        current.description = clip(description, MESSAGE_MAX)
        db.flush()
        return current, False
    fingerprint = bounded(fingerprint)
    alert, created = platform_alert_service.create_or_increment_alert(
        db,
        alert_type=alert_type,
        severity=severity,
        title=clip(title, TITLE_MAX),
        fingerprint=fingerprint,
        description=clip(description, MESSAGE_MAX),
        affected_systems=sorted({clip(name, SYSTEM_NAME_MAX) for name in systems if name}),
        metadata=metadata or {},
        explains=explains,
        recovery_task=recovery_task,
    )
    if created and bell:
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


@dataclass(frozen=True)
class FinishedRun:
    """The run whose end answered an alert (a beat entry's run, a hung run that ended)."""

    task_name: str
    task_id: str
    at: datetime
    state: str = "SUCCESS"


def resolve_automatically(
    db: Session, alert: PlatformAlert | str, reason: str, *, run: FinishedRun | None = None
) -> PlatformAlert | None:
    """Resolve ``alert`` (or the open alert with that fingerprint) because its problem is gone.

    The note says ``resolved automatically: <reason>``. With the ``run`` that answered it,
    it takes the recovery path (:func:`~notifier.health.recovery.resolve_by_run`): the run
    is recorded on the alert and ``alert.resolved`` goes to the channels that had it.
    Without one (beat ticks again, a queue is consumed again) it is the admins' resolve
    path, whose ``alert.resolved`` carries a root cause's summary of what it held back.
    Returns the alert, or None if there was none open (or an admin was first: fine).
    """
    found = open_alert_for(db, alert) if isinstance(alert, str) else alert
    if found is None:
        return None
    note = clip(f"resolved automatically: {reason}", MESSAGE_MAX)
    if run is not None:
        resolved = resolve_by_run(
            db,
            found,
            task_name=run.task_name,
            task_id=run.task_id,
            finished_at=run.at,
            state=run.state,
            notes=note,
        )
        return found if resolved else None
    with suppress(AlreadyResolvedError):
        return platform_alert_service.resolve_alert(
            db, found.id, user_id=None, resolution_notes=note
        )
    return None
