"""AdminNotificationService on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from notifier import Database, NotificationType, Priority, ValidationError, platform_alert_service
from notifier import admin_notification_service as service
from notifier.accounts.users import create_admin
from notifier.keyset import UNREAD_CAP
from notifier.models import AdminNotification


def _make(db: Session, n: int, **kwargs: object) -> list[AdminNotification]:
    made = []
    for i in range(n):
        values: dict[str, object] = {
            "type": NotificationType.SYSTEM_INFO,
            "title": f"note {i}",
            "message": f"message {i}",
        }
        values.update(kwargs)
        made.append(service.create_notification(db, **values))  # type: ignore[arg-type]
    db.commit()
    return made


def test_create_notification_stores_every_field(db_session: Session) -> None:
    note = service.create_notification(
        db_session,
        type="import_failure",
        title="Import failed",
        message="bad csv",
        priority="high",
        action_required=True,
        action_url="/admin/notifications?store_id=5",
        metadata={"job_id": 7, "nested": {"a": [1, 2]}},
        store_id=5,
    )
    db_session.commit()
    db_session.expunge_all()
    stored = db_session.get(AdminNotification, note.id)
    assert stored is not None
    assert stored.type is NotificationType.IMPORT_FAILURE
    assert stored.priority is Priority.HIGH
    assert (stored.title, stored.message, stored.store_id) == ("Import failed", "bad csv", 5)
    assert stored.action_required is True
    assert stored.notification_metadata == {"job_id": 7, "nested": {"a": [1, 2]}}
    assert stored.is_read is False and stored.read_at is None
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)


def test_seed_example_call_works_as_written(db_session: Session) -> None:
    db = db_session
    service.notify_import_failure(
        db=db,
        store_name="Acme Corp",
        job_id=123,
        error_message="CSV parsing failed: invalid column format",
        store_id=5,
    )
    db.commit()
    [note] = db.scalars(select(AdminNotification)).all()
    assert note.type is NotificationType.IMPORT_FAILURE
    assert note.priority is Priority.HIGH
    assert "Acme Corp" in note.title
    assert "CSV parsing failed" in note.message
    assert note.store_id == 5
    assert note.notification_metadata["job_id"] == 123
    # The core does not know the web's URLs: the web links a store's notifications itself.
    assert note.action_url is None


def test_dedup_key_returns_existing_row(db_session: Session) -> None:
    first = service.create_notification(
        db_session, type="system_info", title="a", message="b", dedup_key="k1"
    )
    db_session.commit()
    second = service.create_notification(
        db_session, type="critical_error", title="other", message="c", dedup_key="k1"
    )
    db_session.commit()
    assert second.id == first.id
    assert second.title == "a"
    assert db_session.scalars(select(AdminNotification)).all() == [first]


def test_list_filters_paging_and_order(db_session: Session) -> None:
    _make(db_session, 3, priority="low", store_id=1)
    _make(db_session, 4, priority="critical", type="critical_error", store_id=2)
    page = service.page_notifications(db_session, priority="critical")
    items, total = page.items, page.total
    assert total == 4 and len(items) == 4
    assert all(n.priority is Priority.CRITICAL for n in items)
    # newest first: ids descending when timestamps tie or grow
    assert [n.created_at for n in items] == sorted((n.created_at for n in items), reverse=True)
    page = service.page_notifications(db_session, store_id=1, skip=1, limit=1)
    items, total = page.items, page.total
    assert total == 3 and len(items) == 1
    page = service.page_notifications(db_session, type=NotificationType.CRITICAL_ERROR)
    items, total = page.items, page.total
    assert total == 4
    page = service.page_notifications(db_session, limit=10_000)
    items, total = page.items, page.total
    assert total == 7 and len(items) == 7
    service.mark_as_read(db_session, items[0].id, user_id=None)
    db_session.commit()
    assert service.page_notifications(db_session, is_read=True).total == 1
    assert service.page_notifications(db_session, is_read=False).total == 6


def test_limit_is_capped_at_200(db_session: Session) -> None:
    _make(db_session, 205)
    page = service.page_notifications(db_session, limit=500)
    items, total = page.items, page.total
    assert total == 205 and len(items) == 200


def test_recent_and_unread_count(db_session: Session) -> None:
    notes = _make(db_session, 7)
    assert service.get_unread_count(db_session) == 7
    recent = service.get_recent_notifications(db_session)
    assert [n.title for n in recent] == ["note 6", "note 5", "note 4", "note 3", "note 2"]
    service.mark_as_read(db_session, notes[6].id, user_id=None)
    db_session.commit()
    assert service.get_unread_count(db_session) == 6
    assert service.get_recent_notifications(db_session, limit=1)[0].title == "note 5"


def test_the_unread_count_is_the_integer_a_host_expects(database: Database) -> None:
    # Host code written against ``get_unread_count() -> int`` keeps working.
    with database.session_scope() as db:
        count = service.get_unread_count(db)
        assert count == 0 and not count and count.exact
        assert count - 1 == -1 and count + 2 == 2 and max(count, 3) == 3
        assert json.dumps({"unread": count}) == '{"unread": 0}'
        assert f"{count} unread" == "0 unread"
    with database.engine.begin() as conn:
        conn.execute(
            insert(AdminNotification),
            [
                {"type": "system_info", "title": f"n{i}", "message": "m"}
                for i in range(UNREAD_CAP + 1)
            ],
        )
    with database.session_scope() as db:
        count = service.get_unread_count(db)
        # Past the cap it shows the cap, and says it is not the whole count.
        assert count == UNREAD_CAP and count.exact is False
        assert json.dumps(count) == str(UNREAD_CAP)
        # The statistics still carry the unread count where the first release put it.
        stats = platform_alert_service.get_statistics(db)
        assert stats["unread_notifications"] == UNREAD_CAP
        assert stats["unread_notifications_exact"] is False


def test_mark_as_read_keeps_first_reader(db_session: Session) -> None:
    alice = create_admin(db_session, email="alice@example.com", password="correct horse")
    bob = create_admin(db_session, email="bob@example.com", password="correct horse")
    [note] = _make(db_session, 1)
    first = service.mark_as_read(db_session, note.id, user_id=alice.id)
    db_session.commit()
    assert first is not None and first.is_read and first.read_by_user_id == alice.id
    read_at = first.read_at
    assert read_at is not None and read_at.tzinfo == UTC
    again = service.mark_as_read(db_session, note.id, user_id=bob.id)
    db_session.commit()
    assert again is not None
    assert again.read_at == read_at and again.read_by_user_id == alice.id
    assert service.mark_as_read(db_session, 999_999, user_id=alice.id) is None


def test_mark_all_as_read_counts_only_unread(db_session: Session) -> None:
    notes = _make(db_session, 5)
    service.mark_as_read(db_session, notes[0].id, user_id=None)
    assert service.mark_all_as_read(db_session, user_id=None) == 4
    db_session.commit()
    assert service.get_unread_count(db_session) == 0
    assert service.mark_all_as_read(db_session, user_id=None) == 0


def test_delete_notification(db_session: Session) -> None:
    [note] = _make(db_session, 1)
    assert service.delete_notification(db_session, note.id) is True
    db_session.commit()
    assert service.delete_notification(db_session, note.id) is False
    assert service.page_notifications(db_session).total == 0


@pytest.mark.parametrize(
    ("method", "kwargs", "type_", "priority"),
    [
        (
            "notify_order_sync_failure",
            {"store_name": "Shop", "error_message": "HTTP 502", "store_id": 3},
            NotificationType.ORDER_SYNC_FAILURE,
            Priority.HIGH,
        ),
        (
            "notify_order_exception",
            {"store_name": "Shop", "order_number": "A-1", "unmatched_products": ["X", "Y"]},
            NotificationType.ORDER_EXCEPTION,
            Priority.HIGH,
        ),
        (
            "notify_critical_error",
            {"error_type": "DiskFull", "error_message": "no space", "details": {"disk": "/"}},
            NotificationType.CRITICAL_ERROR,
            Priority.CRITICAL,
        ),
        (
            "notify_store_issue",
            {"store_name": "Shop", "issue": "payment provider down", "store_id": 3},
            NotificationType.STORE_ISSUE,
            Priority.NORMAL,
        ),
        (
            "notify_security_alert",
            {"title": "Brute force", "details": "50 failed logins", "source": "10.0.0.1"},
            NotificationType.SECURITY_ALERT,
            Priority.CRITICAL,
        ),
    ],
)
def test_convenience_methods(
    db_session: Session,
    method: str,
    kwargs: dict[str, object],
    type_: NotificationType,
    priority: Priority,
) -> None:
    note = getattr(service, method)(db_session, **kwargs)
    db_session.commit()
    assert note.type is type_ and note.priority is priority
    assert note.title and note.message
    assert isinstance(note.notification_metadata, dict) and note.notification_metadata


def test_order_exception_lists_the_products(db_session: Session) -> None:
    note = service.notify_order_exception(
        db_session, store_name="Shop", order_number="A-1", unmatched_products=["SKU-9", "SKU-7"]
    )
    assert "SKU-9" in note.message and "SKU-7" in note.message
    assert note.notification_metadata["unmatched_products"] == ["SKU-9", "SKU-7"]


def test_import_failure_with_error_count_says_how_many(db_session: Session) -> None:
    note = service.notify_import_failure(
        db_session, store_name="Shop", job_id="j1", error_message="12 rows failed", error_count=12
    )
    assert "12" in note.title and note.notification_metadata["error_count"] == 12


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "nope"}, "type"),
        ({"priority": "urgent"}, "priority"),
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "title"),
        ({"message": "x" * 10_001}, "message"),
        ({"metadata": ["not", "a", "dict"]}, "metadata"),
        ({"metadata": {"when": object()}}, "metadata"),
        ({"metadata": {"nan": float("nan")}}, "metadata"),
        ({"metadata": {"big": "x" * 20_000}}, "metadata"),
        ({"action_url": "javascript:alert(1)"}, "action_url"),
        ({"action_url": "data:text/html,<script>"}, "action_url"),
        ({"action_url": "//evil.example/x"}, "action_url"),
        ({"action_url": "ftp://example.com/x"}, "action_url"),
        ({"action_url": "/ok\nSet-Cookie: x"}, "action_url"),
        ({"store_id": "5"}, "store_id"),
        ({"action_required": "yes"}, "action_required"),
    ],
)
def test_bad_input_is_refused_before_writing(
    db_session: Session, kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"type": "system_info", "title": "t", "message": "m"}
    values.update(kwargs)
    with pytest.raises(ValidationError) as info:
        service.create_notification(db_session, **values)  # type: ignore[arg-type]
    assert field in info.value.errors
    assert field in str(info.value)
    db_session.commit()
    assert service.page_notifications(db_session).total == 0


def test_validation_names_every_bad_field(db_session: Session) -> None:
    with pytest.raises(ValidationError) as info:
        service.create_notification(db_session, type="x", title="", message="m", priority="y")
    assert set(info.value.errors) == {"type", "title", "priority"}
    assert "import_failure" in info.value.errors["type"]


def test_valid_action_urls_are_kept(db_session: Session) -> None:
    for url in ("/admin/x?y=1", "https://shop.example/orders/1", "http://localhost:5000/a"):
        note = service.create_notification(
            db_session, type="system_info", title="t", message="m", action_url=url
        )
        assert note.action_url == url


def test_bad_filter_values_are_refused(db_session: Session) -> None:
    with pytest.raises(ValidationError):
        service.page_notifications(db_session, priority="urgent")


def test_daily_counts_bucket_by_local_day_and_priority(db_session: Session) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy import update

    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    when = {
        "today": now - timedelta(hours=1),
        "yesterday": now - timedelta(days=1),
        "late utc": datetime(2026, 3, 8, 23, 30, tzinfo=UTC),  # 9 March in Luxembourg
        "too old": now - timedelta(days=20),
    }
    for label, moment in when.items():
        for priority in ("high", "critical") if label == "today" else ("low",):
            note = service.create_notification(
                db_session, type="system_info", title=label, message="m", priority=priority
            )
            db_session.execute(
                update(AdminNotification)
                .where(AdminNotification.id == note.id)
                .values(created_at=moment)
            )
    db_session.commit()
    utc_days = service.get_daily_counts(db_session, days=14, tz=UTC, now=now)
    assert len(utc_days) == 14
    assert utc_days[-1].date.isoformat() == "2026-03-10"
    assert utc_days[-1].counts == {"low": 0, "normal": 0, "high": 1, "critical": 1}
    assert utc_days[-2].counts["low"] == 1
    assert utc_days[-3].counts["low"] == 1  # 8 March in UTC
    assert sum(day.total for day in utc_days) == 4  # the 20-day-old one is outside
    lux_days = service.get_daily_counts(db_session, tz=ZoneInfo("Europe/Luxembourg"), now=now)
    assert lux_days[-2].counts["low"] == 2  # yesterday and 23:30 UTC on the 8th
    assert lux_days[-3].total == 0


def test_create_or_get_says_whether_it_created(db_session: Session) -> None:
    first, created = service.create_or_get_notification(
        db_session, type="system_info", title="a", message="b", dedup_key="k"
    )
    assert created is True
    again, created = service.create_or_get_notification(
        db_session, type="system_info", title="a", message="b", dedup_key="k"
    )
    assert created is False and again.id == first.id
