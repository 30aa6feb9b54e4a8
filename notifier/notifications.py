"""AdminNotificationService: create, list, read and delete admin notifications."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import and_, case, delete, false, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from . import outbox
from .config import configured_timezone
from .enums import NotificationType, Priority
from .keyset import UNREAD_CAP, CappedCount, Page, SortKey, capped_count, keyset_page, page_bounds
from .metrics import inc_on_commit
from .models import AdminNotification
from .text import clip
from .types import utcnow
from .upserts import insert_notification_once
from .validation import FINGERPRINT_MAX, MESSAGE_MAX, TITLE_MAX, Checker

# A plain INSERT ... RETURNING loaded as the ORM object: one cached statement, no flush.
# It also returns whether any delivery endpoint is enabled (outbox.ENDPOINT_ENABLED), so a
# one-row transaction with none enabled reads no endpoints: one round trip, as raw SQL.
# The label itself is selected, not its EXISTS: every column loaded is then one the
# RETURNING names, found at once. To match a bare EXISTS to its label, SQLAlchemy 2.0
# fills an index on this shared statement on first use, and a thread that comes by while
# another is filling it takes it as complete: the first concurrent requests of a process
# failed with NoSuchColumnError.
_TABLE = AdminNotification.__table__
_INSERT = select(AdminNotification, outbox.ENDPOINT_ENABLED).from_statement(
    insert(_TABLE).returning(*_TABLE.c, outbox.ENDPOINT_ENABLED)  # type: ignore[arg-type]
)
_FRESH = {"populate_existing": True}
#: Newest first; the id breaks ties, so a cursor names one position.
NOTIFICATION_ORDER = SortKey((AdminNotification.created_at, AdminNotification.id), (True, True))


@dataclass(frozen=True)
class DailyCount:
    """How many notifications of each priority were created on one local day."""

    date: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """All priorities together."""
        return sum(self.counts.values())


class NotificationFields(TypedDict, total=False):
    """The fields a notification is created with (``create_notification`` and friends)."""

    type: Required[NotificationType | str]
    title: Required[str]
    message: Required[str]
    priority: Priority | str
    action_required: bool
    action_url: str | None
    metadata: dict[str, Any] | None
    store_id: int | None
    dedup_key: str | None
    alert_fingerprint: str | None


def _validated(fields: NotificationFields) -> dict[str, Any]:
    """The row values for ``fields``, or a ValidationError naming every bad field."""
    check = Checker()
    action_required = fields.get("action_required", False)
    values: dict[str, Any] = {
        "type": check.enum("type", fields.get("type"), NotificationType),
        "priority": check.enum("priority", fields.get("priority", Priority.NORMAL), Priority),
        "title": check.text("title", fields.get("title"), max_length=TITLE_MAX),
        "message": check.text("message", fields.get("message"), max_length=MESSAGE_MAX),
        "action_url": check.action_url("action_url", fields.get("action_url")),
        "notification_metadata": check.metadata("metadata", fields.get("metadata")),
        "store_id": check.optional_int("store_id", fields.get("store_id")),
        "dedup_key": check.text(
            "dedup_key", fields.get("dedup_key"), max_length=FINGERPRINT_MAX, required=False
        ),
        "alert_fingerprint": check.text(
            "alert_fingerprint",
            fields.get("alert_fingerprint"),
            max_length=FINGERPRINT_MAX,
            required=False,
        ),
        "action_required": action_required,
        "is_read": False,
        "created_at": utcnow(),
    }
    if not isinstance(action_required, bool):
        check.fail("action_required", "must be true or false")
    check.done()
    return values


#: An admin's ``bell_filter``: notification type -> the priorities that light their bell.
BellFilter = Mapping[str, frozenset[str]] | None


def _bell_clause(only: BellFilter) -> list[ColumnElement[bool]]:
    if only is None:
        return []
    wanted = [
        and_(AdminNotification.type == type_, AdminNotification.priority.in_(sorted(levels)))
        for type_, levels in sorted(only.items())
        if levels
    ]
    return [or_(*wanted)] if wanted else [false()]


class AdminNotificationService:
    """Admin notifications. Every method takes the session first and never commits."""

    def create_notification(
        self, db: Session, **fields: Unpack[NotificationFields]
    ) -> AdminNotification:
        """Create a notification; with a ``dedup_key`` that exists, return that row instead."""
        return self.create_or_get_notification(db, **fields)[0]

    def create_or_get_notification(
        self, db: Session, **fields: Unpack[NotificationFields]
    ) -> tuple[AdminNotification, bool]:
        """Create a notification, or find the one with this ``dedup_key``; ``(row, created)``.

        Fields: ``type``, ``title``, ``message`` (required), ``priority`` (normal),
        ``action_required`` (False), ``action_url``, ``metadata``, ``store_id``,
        ``dedup_key`` and ``alert_fingerprint`` (the platform alert it was raised for).
        The dedup path is one ``INSERT ... ON CONFLICT DO NOTHING``: two processes racing on
        the same key create one row, and the loser gets the winner's row with ``False``.
        """
        values = _validated(fields)
        labels = (values["type"].value, values["priority"].value)
        if values["dedup_key"] is None:
            row = db.execute(_INSERT, values, execution_options=_FRESH).one()
            notification: AdminNotification = row[0]
            inc_on_commit(db, "notifier_notifications_created_total", labels)
            outbox.on_notification(db, notification, endpoint_enabled=bool(row[1]))
            return notification, True
        created: AdminNotification | None = db.scalars(
            insert_notification_once(), values, execution_options=_FRESH
        ).first()
        if created is not None:
            inc_on_commit(db, "notifier_notifications_created_total", labels)
            outbox.on_notification(db, created)
            return created, True
        # The key exists (or a racing transaction just committed it): return that row.
        existing = db.scalars(
            select(AdminNotification).where(AdminNotification.dedup_key == values["dedup_key"])
        ).one()
        return existing, False

    def page_notifications(
        self,
        db: Session,
        *,
        priority: Priority | str | None = None,
        type: NotificationType | str | None = None,
        is_read: bool | None = None,
        store_id: int | None = None,
        cursor: str | None = None,
        skip: int = 0,
        limit: int = 50,
    ) -> Page[AdminNotification]:
        """A page of notifications, newest first, after ``cursor`` (or ``skip`` rows in).

        The total is exact up to ``keyset.TOTAL_CAP`` and a lower bound beyond; a deep page
        by cursor costs what the first one does.
        """
        conditions = self._filters(priority=priority, type=type, is_read=is_read, store_id=store_id)
        skip, limit = page_bounds(skip, limit)
        order = NOTIFICATION_ORDER
        return keyset_page(
            db, AdminNotification, conditions, order, cursor=cursor, skip=skip, limit=limit
        )

    def _filters(
        self,
        *,
        priority: Priority | str | None,
        type: NotificationType | str | None,
        is_read: bool | None,
        store_id: int | None,
    ) -> list[Any]:
        check = Checker()
        conditions: list[Any] = []
        if priority is not None:
            conditions.append(
                AdminNotification.priority == check.enum("priority", priority, Priority)
            )
        if type is not None:
            conditions.append(AdminNotification.type == check.enum("type", type, NotificationType))
        if is_read is not None:
            conditions.append(AdminNotification.is_read.is_(bool(is_read)))
        if store_id is not None:
            conditions.append(
                AdminNotification.store_id == check.optional_int("store_id", store_id)
            )
        check.done()
        return conditions

    def get_recent_notifications(
        self, db: Session, *, limit: int = 5, only: BellFilter = None
    ) -> list[AdminNotification]:
        """The newest unread notifications, for the header dropdown.

        ``only`` (an admin's ``bell_filter``) keeps the types and priorities that light
        that admin's bell; None keeps everything.
        """
        _, limit = page_bounds(0, limit)
        return list(
            db.scalars(
                select(AdminNotification)
                .where(AdminNotification.is_read.is_(False), *_bell_clause(only))
                .order_by(AdminNotification.created_at.desc(), AdminNotification.id.desc())
                .limit(limit)
            )
        )

    def get_unread_count(self, db: Session, *, only: BellFilter = None) -> CappedCount:
        """How many notifications nobody has read yet (of those in ``only``, if given).

        Counted up to ``keyset.UNREAD_CAP`` (1,000): past it the value is the cap and
        ``exact`` is False (the bell says "1,000+ unread"), so the bell, asked by every open
        page, never counts 100,000 unread rows.
        """
        return capped_count(
            db,
            AdminNotification,
            [AdminNotification.is_read.is_(False), *_bell_clause(only)],
            UNREAD_CAP,
        )

    def get_daily_counts(
        self,
        db: Session,
        *,
        days: int = 14,
        tz: tzinfo | None = None,
        now: datetime | None = None,
    ) -> list[DailyCount]:
        """Notifications created per local day and priority, oldest day first, zeros included.

        Days are calendar days in ``tz`` (default ``NOTIFIER_TIMEZONE``); the last is today.
        One grouped query over the ``created_at`` index, on both databases.
        """
        days = max(1, min(int(days), 90))
        zone = tz or configured_timezone()
        today = (now or utcnow()).astimezone(zone).date()
        dates = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
        starts = [datetime.combine(day, time.min, tzinfo=zone) for day in dates]
        # The day index of a row is how many later midnights it is at or after.
        day_index = sum(
            (case((AdminNotification.created_at >= start, 1), else_=0) for start in starts[1:]),
            start=literal(0),
        )
        rows = db.execute(
            select(day_index.label("day"), AdminNotification.priority, func.count())
            .where(AdminNotification.created_at >= starts[0])
            .group_by(day_index, AdminNotification.priority)
        ).all()
        result = [DailyCount(day, dict.fromkeys((p.value for p in Priority), 0)) for day in dates]
        for index, priority, count in rows:
            result[int(index)].counts[Priority(priority).value] += int(count)
        return result

    def get_notification(self, db: Session, notification_id: int) -> AdminNotification | None:
        """One notification by id, or None."""
        return db.get(AdminNotification, notification_id)

    def mark_as_read(
        self, db: Session, notification_id: int, *, user_id: int | None
    ) -> AdminNotification | None:
        """Mark one notification read by ``user_id``; the first reader and time are kept.

        Returns the notification, or None for an unknown id.
        """
        db.execute(
            update(AdminNotification)
            .where(AdminNotification.id == notification_id, AdminNotification.is_read.is_(False))
            .values(is_read=True, read_at=utcnow(), read_by_user_id=user_id)
            .execution_options(synchronize_session=False)
        )
        notification = db.get(AdminNotification, notification_id, populate_existing=True)
        return notification

    def mark_all_as_read(self, db: Session, *, user_id: int | None) -> int:
        """Mark every unread notification read in one UPDATE; returns how many it marked."""
        result = db.execute(
            update(AdminNotification)
            .where(AdminNotification.is_read.is_(False))
            .values(is_read=True, read_at=utcnow(), read_by_user_id=user_id)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_notification(self, db: Session, notification_id: int) -> bool:
        """Delete one notification; returns whether it existed."""
        result = db.execute(
            delete(AdminNotification)
            .where(AdminNotification.id == notification_id)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0))

    # --- convenience methods: one per everyday situation -------------------------------

    def notify_import_failure(
        self,
        db: Session,
        *,
        store_name: str,
        job_id: int | str,
        error_message: str,
        store_id: int | None = None,
        error_count: int | None = None,
        dedup_key: str | None = None,
        extra: dict[str, Any] | None = None,
        alert_fingerprint: str | None = None,
    ) -> AdminNotification:
        """A product or order import failed, or finished with too many row errors (high)."""
        if error_count:
            title = f"Import for {store_name} finished with {error_count} errors"
        else:
            title = f"Import failed for {store_name}"
        return self.create_notification(
            db,
            type=NotificationType.IMPORT_FAILURE,
            priority=Priority.HIGH,
            title=clip(title, TITLE_MAX),
            message=clip(f"Import job {job_id}: {error_message}", MESSAGE_MAX),
            action_required=True,
            metadata={
                **(extra or {}),
                "store_name": store_name,
                "job_id": job_id,
                "error_message": clip(error_message, 2000),
                "error_count": error_count,
            },
            store_id=store_id,
            dedup_key=dedup_key,
            alert_fingerprint=alert_fingerprint,
        )

    def notify_order_sync_failure(
        self,
        db: Session,
        *,
        store_name: str,
        error_message: str,
        store_id: int | None = None,
        error_count: int | None = None,
        dedup_key: str | None = None,
        extra: dict[str, Any] | None = None,
        alert_fingerprint: str | None = None,
    ) -> AdminNotification:
        """An order sync with a marketplace failed, or finished with too many row errors (high)."""
        if error_count:
            title = f"Order sync for {store_name} finished with {error_count} errors"
        else:
            title = f"Order sync failed for {store_name}"
        return self.create_notification(
            db,
            type=NotificationType.ORDER_SYNC_FAILURE,
            priority=Priority.HIGH,
            title=clip(title, TITLE_MAX),
            message=clip(error_message, MESSAGE_MAX),
            action_required=True,
            metadata={
                **(extra or {}),
                "store_name": store_name,
                "error_message": error_message[:2000],
                **({"error_count": error_count} if error_count is not None else {}),
            },
            store_id=store_id,
            dedup_key=dedup_key,
            alert_fingerprint=alert_fingerprint,
        )

    def notify_order_exception(
        self,
        db: Session,
        *,
        store_name: str,
        order_number: str,
        unmatched_products: Sequence[str],
        store_id: int | None = None,
        dedup_key: str | None = None,
        extra: dict[str, Any] | None = None,
        alert_fingerprint: str | None = None,
    ) -> AdminNotification:
        """An order references products the store does not have (high)."""
        products = [str(p) for p in unmatched_products]
        shown = ", ".join(products[:20]) + (
            f" and {len(products) - 20} more" if len(products) > 20 else ""
        )
        return self.create_notification(
            db,
            type=NotificationType.ORDER_EXCEPTION,
            priority=Priority.HIGH,
            title=clip(f"Order {order_number} from {store_name} has unmatched products", TITLE_MAX),
            message=clip(
                f"Order {order_number} references {len(products)} product(s) not in the catalogue: "
                f"{shown}",
                MESSAGE_MAX,
            ),
            action_required=True,
            metadata={
                **(extra or {}),
                "store_name": store_name,
                "order_number": order_number,
                "unmatched_products": products[:200],
            },
            store_id=store_id,
            dedup_key=dedup_key,
            alert_fingerprint=alert_fingerprint,
        )

    def notify_critical_error(
        self,
        db: Session,
        *,
        error_type: str,
        error_message: str,
        details: dict[str, Any] | None = None,
        dedup_key: str | None = None,
        alert_fingerprint: str | None = None,
    ) -> AdminNotification:
        """A system-level error that needs an admin now (critical)."""
        return self.create_notification(
            db,
            type=NotificationType.CRITICAL_ERROR,
            priority=Priority.CRITICAL,
            title=clip(f"Critical error: {error_type}", TITLE_MAX),
            message=clip(error_message, MESSAGE_MAX),
            action_required=True,
            metadata={"error_type": error_type, "details": details or {}},
            dedup_key=dedup_key,
            alert_fingerprint=alert_fingerprint,
        )

    def notify_store_issue(
        self,
        db: Session,
        *,
        store_name: str,
        issue: str,
        store_id: int | None = None,
        priority: Priority | str = Priority.NORMAL,
    ) -> AdminNotification:
        """Something about a store that an admin should know (normal by default)."""
        return self.create_notification(
            db,
            type=NotificationType.STORE_ISSUE,
            priority=priority,
            title=clip(f"Store issue: {store_name}", TITLE_MAX),
            message=clip(issue, MESSAGE_MAX),
            metadata={"store_name": store_name},
            store_id=store_id,
        )

    def notify_security_alert(
        self, db: Session, *, title: str, details: str, source: str | None = None
    ) -> AdminNotification:
        """A security event (critical)."""
        return self.create_notification(
            db,
            type=NotificationType.SECURITY_ALERT,
            priority=Priority.CRITICAL,
            title=clip(f"Security: {title}", TITLE_MAX),
            message=clip(details, MESSAGE_MAX),
            action_required=True,
            metadata={"source": source},
        )


admin_notification_service = AdminNotificationService()

__all__ = [
    "AdminNotificationService",
    "DailyCount",
    "NotificationFields",
    "admin_notification_service",
]
