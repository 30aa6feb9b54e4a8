"""The change feed behind live push: replayable positions and what changed after one.

A position is two numbers written ``"<notification id>-<alert change>"``: the newest
notification id seen and the newest alert change (``last_occurred_at`` or ``resolved_at``,
in microseconds since the epoch). Both come from the rows themselves, so any process can
replay from a position after a reconnect or a restart: no change log to keep or prune.

On PostgreSQL, triggers (``POSTGRES_TRIGGERS``, installed by the migration and by
``create_all``) send ``pg_notify`` on :data:`CHANNEL` with ids only; PostgreSQL delivers
them when the writing transaction commits, whoever wrote (worker, web, a host app, SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DDL, event, func, or_, select
from sqlalchemy.orm import Session

from ..models import AdminNotification, Base, PlatformAlert
from ..types import integer_bounds

#: The PostgreSQL channel the triggers notify on.
CHANNEL = "notifier_changes"
#: Alert changes are replayed from this much before a position: rows are stamped by the
#: writing process's clock before they commit, so a change may commit a little after a
#: later-stamped one was seen. Alert events are whole states, so a repeat is harmless.
ALERT_REPLAY_OVERLAP = timedelta(seconds=2)
#: At most this many notifications are replayed; a client that missed more gets the newest.
REPLAY_MAX = 100

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The largest notification id the column holds, and the last microsecond Python can date.
_NOTIFICATION_ID_MAX = integer_bounds(AdminNotification.id.type)[1]
_CHANGE_MAX = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class Position:
    """A point in the change feed: newest notification id and newest alert change (µs)."""

    notification_id: int = 0
    alert_change: int = 0

    def __str__(self) -> str:
        return f"{self.notification_id}-{self.alert_change}"

    @classmethod
    def parse(cls, text: str | None) -> Position | None:
        """The position in a ``Last-Event-ID``, or None when there is none.

        Raises ValueError (saying why) when ``text`` is malformed, or names a notification id
        or an alert change no row can have: the replay's queries would fail on it.
        """
        if not text:
            return None
        left, sep, right = text.strip().partition("-")
        digits = left.isascii() and left.isdigit() and right.isascii() and right.isdigit()
        if not sep or not digits or len(text) > 40:
            raise ValueError("is not a position; send back an event id as the stream gave it")
        position = cls(int(left), int(right))
        if position.notification_id > _NOTIFICATION_ID_MAX or position.alert_change > _CHANGE_MAX:
            raise ValueError("is past any position of this stream; send an id it gave")
        return position

    def merge(self, other: Position) -> Position:
        """The later of the two, field by field."""
        return Position(
            max(self.notification_id, other.notification_id),
            max(self.alert_change, other.alert_change),
        )


def micros(moment: datetime | None) -> int:
    """``moment`` in microseconds since the epoch (0 for None)."""
    if moment is None:
        return 0
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def alert_change(alert: PlatformAlert) -> int:
    """The alert's last change in microseconds: its newest occurrence or its resolution."""
    return max(micros(alert.last_occurred_at), micros(alert.resolved_at))


def current_position(db: Session) -> Position:
    """The feed's position now: one query reading the ends of three indexes."""
    row = db.execute(
        select(
            select(func.max(AdminNotification.id)).scalar_subquery(),
            select(func.max(PlatformAlert.last_occurred_at)).scalar_subquery(),
            select(func.max(PlatformAlert.resolved_at)).scalar_subquery(),
        )
    ).one()
    return Position(int(row[0] or 0), max(micros(row[1]), micros(row[2])))


def notifications_after(
    db: Session, notification_id: int, *, limit: int = REPLAY_MAX
) -> list[AdminNotification]:
    """Notifications newer than ``notification_id``, oldest first (the newest ``limit``)."""
    newest = db.scalars(
        select(AdminNotification)
        .where(AdminNotification.id > notification_id)
        .order_by(AdminNotification.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(newest))


def notifications_by_id(db: Session, ids: set[int]) -> list[AdminNotification]:
    """The notifications with these ids (those that still exist), oldest first."""
    if not ids:
        return []
    return list(
        db.scalars(
            select(AdminNotification)
            .where(AdminNotification.id.in_(sorted(ids)))
            .order_by(AdminNotification.id)
        )
    )


def alerts_changed_after(
    db: Session, change: int, *, limit: int = REPLAY_MAX
) -> list[PlatformAlert]:
    """Alerts that occurred again or were resolved after ``change`` (µs), oldest first.

    Reads from :data:`ALERT_REPLAY_OVERLAP` earlier, so a change stamped before a position
    but committed after it is not lost.
    """
    since = _EPOCH + timedelta(microseconds=change) - ALERT_REPLAY_OVERLAP
    rows = db.scalars(
        select(PlatformAlert)
        .where(or_(PlatformAlert.last_occurred_at > since, PlatformAlert.resolved_at > since))
        .order_by(PlatformAlert.last_occurred_at.desc())
        .limit(limit)
    ).all()
    return sorted(rows, key=alert_change)


def alerts_by_id(db: Session, ids: set[int]) -> list[PlatformAlert]:
    """The alerts with these ids, in change order."""
    if not ids:
        return []
    rows = db.scalars(select(PlatformAlert).where(PlatformAlert.id.in_(sorted(ids)))).all()
    return sorted(rows, key=alert_change)


# One function and three triggers. Inserts name the new notification (the stream sends it);
# updates and deletes of notifications say only "u" once per statement (the unread count may
# have moved: one UPDATE marking 10,000 read sends one notice); alerts name the alert.
# PostgreSQL folds identical notices of one transaction into one.
POSTGRES_TRIGGERS = (
    f"""
CREATE OR REPLACE FUNCTION notifier_notify_change() RETURNS trigger AS $$
BEGIN
  IF TG_TABLE_NAME = 'notifier_admin_notifications' AND TG_LEVEL = 'ROW' THEN
    PERFORM pg_notify('{CHANNEL}', 'n' || NEW.id);
  ELSIF TG_TABLE_NAME = 'notifier_admin_notifications' THEN
    PERFORM pg_notify('{CHANNEL}', 'u');
  ELSE
    PERFORM pg_notify('{CHANNEL}', 'a' || NEW.id);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql
""",
    "CREATE TRIGGER notifier_notification_insert AFTER INSERT ON notifier_admin_notifications "
    "FOR EACH ROW EXECUTE FUNCTION notifier_notify_change()",
    "CREATE TRIGGER notifier_notification_change AFTER UPDATE OR DELETE"
    " ON notifier_admin_notifications"
    " FOR EACH STATEMENT EXECUTE FUNCTION notifier_notify_change()",
    "CREATE TRIGGER notifier_alert_change AFTER INSERT OR UPDATE ON notifier_platform_alerts "
    "FOR EACH ROW EXECUTE FUNCTION notifier_notify_change()",
)
POSTGRES_DROP_TRIGGERS = (
    "DROP TRIGGER IF EXISTS notifier_alert_change ON notifier_platform_alerts",
    "DROP TRIGGER IF EXISTS notifier_notification_change ON notifier_admin_notifications",
    "DROP TRIGGER IF EXISTS notifier_notification_insert ON notifier_admin_notifications",
    "DROP FUNCTION IF EXISTS notifier_notify_change()",
)

# Schemas made with metadata.create_all (tests, a host without Alembic) get them too.
_function = DDL(POSTGRES_TRIGGERS[0])  # type: ignore[no-untyped-call]
event.listen(Base.metadata, "before_create", _function.execute_if(dialect="postgresql"))
for _statement in POSTGRES_TRIGGERS[1:]:
    _on = AdminNotification if "ON notifier_admin_notifications" in _statement else PlatformAlert
    _trigger = DDL(_statement)  # type: ignore[no-untyped-call]
    event.listen(_on.__table__, "after_create", _trigger.execute_if(dialect="postgresql"))

__all__ = [
    "CHANNEL",
    "POSTGRES_DROP_TRIGGERS",
    "POSTGRES_TRIGGERS",
    "Position",
    "alert_change",
    "alerts_by_id",
    "alerts_changed_after",
    "current_position",
    "micros",
    "notifications_after",
    "notifications_by_id",
]
