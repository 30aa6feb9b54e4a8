"""Root causes hold back their symptoms: recorded and shown, not delivered, then summarised.

A root-cause alert names what it explains in ``explains``, a scope: ``scheduler``,
``queue:<name>``, ``database:<tag>``, ``broker:<tag>``. A symptom (a missed run, a job
failure whose exception is a connection error) is recorded inside
:func:`~notifier.outbox.symptom_of` with the scopes it belongs to. While a root cause of one
of those scopes is open, the symptom gets ``held_back_by_id`` and no delivery is queued;
the root cause counts it (``held_back_count``) and its ``alert.resolved`` carries the
summary. The race (a symptom recorded a moment before its cause) is the dispatcher's: a
symptom's deliveries keep their scopes and wait ``NOTIFIER_INHIBIT_WAIT`` seconds (0:
today's behaviour, sent at once), and a claim looks again before sending.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .. import outbox
from ..errors import ConfigurationError
from ..metrics import inc_on_commit
from ..models import AdminNotification, Delivery, PlatformAlert

__all__ = [
    "INHIBIT_WAIT_ENV",
    "SUMMARY_ITEMS",
    "held_back_counts",
    "inhibit_wait",
    "open_root_cause",
    "root_cause_titles",
]

#: Seconds a symptom's deliveries wait for a root cause that may be recorded just after.
INHIBIT_WAIT_ENV = "NOTIFIER_INHIBIT_WAIT"
#: Held-back alerts (and notifications) a summary lists by name; the counts cover them all.
SUMMARY_ITEMS = 20


def inhibit_wait() -> timedelta:
    """The race wait, from ``NOTIFIER_INHIBIT_WAIT`` (seconds; default 0)."""
    raw = os.environ.get(INHIBIT_WAIT_ENV, "").strip()
    try:
        seconds = float(raw) if raw else 0.0
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigurationError(f"{INHIBIT_WAIT_ENV} must be a number of seconds from 0 to 3600")
    return timedelta(seconds=seconds)


def open_root_cause(db: Session, scopes: Sequence[str]) -> int | None:
    """The id of the oldest open root-cause alert explaining one of ``scopes``, or None."""
    return db.scalar(
        select(PlatformAlert.id)
        .where(
            PlatformAlert.explains.is_not(None),
            PlatformAlert.is_resolved.is_(False),
            PlatformAlert.explains.in_(sorted(set(scopes))),
        )
        .order_by(PlatformAlert.first_occurred_at, PlatformAlert.id)
        .limit(1)
    )


def _mark(db: Session, root_id: int, subject: PlatformAlert | AdminNotification) -> bool:
    """Mark ``subject`` held back by ``root_id`` (once) and count it on the root cause."""
    if isinstance(subject, PlatformAlert) and subject.id == root_id:
        return False  # a root cause is never its own symptom
    if subject.held_back_by_id == root_id:
        return True
    subject.held_back_by_id = root_id
    db.execute(
        update(PlatformAlert)
        .where(PlatformAlert.id == root_id)
        .values(held_back_count=PlatformAlert.held_back_count + 1)
        .execution_options(synchronize_session=False)
    )
    kind = "alert" if isinstance(subject, PlatformAlert) else "notification"
    inc_on_commit(db, "notifier_held_back_total", (kind,))
    return True


class _Inhibitor:
    """The outbox's :class:`~notifier.outbox.Inhibitor`: scopes against open root causes."""

    def hold(
        self, db: Session, subject: PlatformAlert | AdminNotification, scopes: list[str]
    ) -> bool:
        root_id = open_root_cause(db, scopes)
        if root_id is None:
            return False
        db.flush()
        return _mark(db, root_id, subject)

    def not_before(self, due: datetime) -> datetime:
        return due + inhibit_wait()

    def recheck(self, db: Session, rows: Sequence[Delivery]) -> set[int]:
        held: dict[int, int] = {}
        roots: dict[tuple[str, ...], int | None] = {}
        for row in rows:
            if row.scopes:
                key = tuple(sorted(row.scopes))
                if key not in roots:
                    roots[key] = open_root_cause(db, key)
                root_id = roots[key]
                if root_id is not None:
                    held[row.id] = root_id
        if not held:
            return set()
        for row in rows:
            root_id = held.get(row.id)
            if root_id is None:
                continue
            subject: PlatformAlert | AdminNotification | None = None
            if row.alert_id is not None:
                subject = db.get(PlatformAlert, row.alert_id)
            elif row.notification_id is not None:
                subject = db.get(AdminNotification, row.notification_id)
            if subject is not None:
                _mark(db, root_id, subject)
        db.execute(
            delete(Delivery)
            .where(Delivery.id.in_(list(held)))
            .execution_options(synchronize_session=False)
        )
        return set(held)

    def summary(self, db: Session, root: PlatformAlert) -> dict[str, Any] | None:
        alerts = db.execute(
            select(PlatformAlert.id, PlatformAlert.title, PlatformAlert.occurrence_count)
            .where(PlatformAlert.held_back_by_id == root.id)
            .order_by(PlatformAlert.id)
            .limit(SUMMARY_ITEMS)
        ).all()
        counts = held_back_counts(db, root.id)
        if not any(counts.values()):
            return None
        return {
            **counts,
            "root_cause": root.title,
            "items": [
                {"id": a.id, "title": a.title, "occurrence_count": a.occurrence_count}
                for a in alerts
            ],
        }


def root_cause_titles(db: Session, ids: Iterable[int]) -> dict[int, str]:
    """The titles of the root-cause alerts ``ids`` (for "held back by ..." on a page)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = db.execute(
        select(PlatformAlert.id, PlatformAlert.title).where(PlatformAlert.id.in_(wanted))
    )
    return {row.id: row.title for row in rows}


def held_back_counts(db: Session, root_id: int) -> dict[str, int]:
    """How many alerts and notifications the root cause ``root_id`` held back."""
    alerts, notifications = db.execute(
        select(
            select(func.count())
            .select_from(PlatformAlert)
            .where(PlatformAlert.held_back_by_id == root_id)
            .scalar_subquery(),
            select(func.count())
            .select_from(AdminNotification)
            .where(AdminNotification.held_back_by_id == root_id)
            .scalar_subquery(),
        )
    ).one()
    return {"alerts": int(alerts), "notifications": int(notifications)}


outbox.set_inhibitor(_Inhibitor())
