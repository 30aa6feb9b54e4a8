"""PlatformAlertService on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier import (
    AlertType,
    AlreadyResolvedError,
    Severity,
    ValidationError,
    admin_notification_service,
    get_statistics,
)
from notifier import platform_alert_service as service
from notifier.accounts.users import create_admin
from notifier.models import PlatformAlert


def test_create_alert_stores_every_field(db_session: Session) -> None:
    alert = service.create_alert(
        db_session,
        alert_type="integration",
        severity="error",
        title="Letzshop API down",
        description="502 from upstream",
        affected_stores=[3, 1, 3],
        affected_systems=["letzshop"],
        metadata={"status": 502},
    )
    db_session.commit()
    db_session.expunge_all()
    stored = db_session.get(PlatformAlert, alert.id)
    assert stored is not None
    assert stored.alert_type is AlertType.INTEGRATION and stored.severity is Severity.ERROR
    assert stored.affected_stores == [1, 3]
    assert stored.affected_systems == ["letzshop"]
    assert stored.alert_metadata == {"status": 502}
    assert stored.fingerprint == "integration:Letzshop API down"
    assert stored.occurrence_count == 1
    assert stored.first_occurred_at == stored.last_occurred_at
    assert stored.first_occurred_at.tzinfo is not None
    assert stored.is_resolved is False


def test_database_refuses_a_second_open_alert_per_fingerprint(db_session: Session) -> None:
    service.create_alert(db_session, alert_type="system", severity="info", title="t")
    db_session.commit()
    with pytest.raises(IntegrityError):
        service.create_alert(db_session, alert_type="system", severity="info", title="t")
    db_session.rollback()


def test_create_or_increment_counts_and_merges(db_session: Session) -> None:
    first, created = service.create_or_increment_alert(
        db_session,
        alert_type="integration",
        severity="warning",
        title="Sync failing",
        affected_stores=[2],
        affected_systems=["letzshop"],
        metadata={"first": True},
    )
    db_session.commit()
    assert created is True and first.occurrence_count == 1
    second, created = service.create_or_increment_alert(
        db_session,
        alert_type="integration",
        severity="critical",
        title="Sync failing",
        description="now worse",
        affected_stores=[1, 2],
        affected_systems=["orders-db"],
        metadata={"second": True},
    )
    db_session.commit()
    assert created is False and second.id == first.id
    assert second.occurrence_count == 2
    assert second.severity is Severity.CRITICAL
    assert second.affected_stores == [1, 2]
    assert second.affected_systems == ["letzshop", "orders-db"]
    assert second.description == "now worse"
    assert second.alert_metadata == {"first": True}
    assert second.last_occurred_at >= second.first_occurred_at
    # a lower severity never lowers it
    third, _ = service.create_or_increment_alert(
        db_session, alert_type="integration", severity="info", title="Sync failing"
    )
    db_session.commit()
    assert third.severity is Severity.CRITICAL and third.occurrence_count == 3
    assert third.description == "now worse"
    assert len(db_session.scalars(select(PlatformAlert)).all()) == 1


def test_explicit_fingerprint_groups_different_titles(db_session: Session) -> None:
    a, _ = service.create_or_increment_alert(
        db_session, alert_type="capacity", severity="error", title="Worker 1 OOM", fingerprint="oom"
    )
    b, created = service.create_or_increment_alert(
        db_session, alert_type="capacity", severity="error", title="Worker 2 OOM", fingerprint="oom"
    )
    db_session.commit()
    assert created is False and a.id == b.id and b.occurrence_count == 2
    assert b.title == "Worker 1 OOM"


def test_recurrence_after_resolve_opens_a_linked_alert(db_session: Session) -> None:
    admin = create_admin(db_session, email="ops@example.com", password="long enough")
    old, _ = service.create_or_increment_alert(
        db_session, alert_type="database", severity="error", title="Replica lag"
    )
    service.create_or_increment_alert(
        db_session, alert_type="database", severity="error", title="Replica lag"
    )
    db_session.commit()
    service.resolve_alert(db_session, old.id, user_id=admin.id, resolution_notes="restarted")
    db_session.commit()
    new, created = service.create_or_increment_alert(
        db_session, alert_type="database", severity="warning", title="Replica lag"
    )
    db_session.commit()
    assert created is True and new.id != old.id and new.occurrence_count == 1
    assert new.alert_metadata["previous_alert_id"] == old.id
    assert new.alert_metadata["previous_occurrence_count"] == 2
    again, created = service.create_or_increment_alert(
        db_session, alert_type="database", severity="warning", title="Replica lag"
    )
    assert created is False and again.id == new.id and again.occurrence_count == 2


def test_resolve_alert(db_session: Session) -> None:
    admin = create_admin(db_session, email="ops@example.com", password="long enough")
    alert = service.create_alert(db_session, alert_type="security", severity="critical", title="x")
    db_session.commit()
    resolved = service.resolve_alert(
        db_session, alert.id, user_id=admin.id, resolution_notes="rotated the keys"
    )
    db_session.commit()
    assert resolved is not None and resolved.is_resolved
    assert resolved.resolved_by_user_id == admin.id
    assert resolved.resolution_notes == "rotated the keys"
    assert resolved.resolved_at is not None and resolved.resolved_at.tzinfo is not None
    with pytest.raises(AlreadyResolvedError):
        service.resolve_alert(db_session, alert.id, user_id=admin.id, resolution_notes="again")
    db_session.rollback()
    assert db_session.get(PlatformAlert, alert.id).resolution_notes == "rotated the keys"  # type: ignore[union-attr]
    assert service.resolve_alert(db_session, 424242, user_id=None, resolution_notes="n") is None


def test_resolve_requires_notes(db_session: Session) -> None:
    alert = service.create_alert(db_session, alert_type="system", severity="info", title="x")
    with pytest.raises(ValidationError) as info:
        service.resolve_alert(db_session, alert.id, user_id=None, resolution_notes="  ")
    assert "resolution_notes" in info.value.errors
    db_session.commit()
    assert db_session.get(PlatformAlert, alert.id).is_resolved is False  # type: ignore[union-attr]


def test_get_alerts_filters_and_orders_unresolved_first(db_session: Session) -> None:
    made = [
        service.create_alert(
            db_session, alert_type=t, severity=s, title=f"alert {i}", fingerprint=f"f{i}"
        )
        for i, (t, s) in enumerate(
            [
                ("system", "info"),
                ("capacity", "critical"),
                ("system", "error"),
                ("security", "critical"),
            ]
        )
    ]
    db_session.commit()
    service.resolve_alert(db_session, made[3].id, user_id=None, resolution_notes="done")
    db_session.commit()
    page = service.page_alerts(db_session)
    items, total = page.items, page.total
    assert total == 4
    assert items[-1].id == made[3].id  # the resolved one sorts last
    assert [a.id for a in items[:3]] == [made[2].id, made[1].id, made[0].id]  # newest first
    assert service.page_alerts(db_session, alert_type="system").total == 2
    assert service.page_alerts(db_session, severity="critical").total == 2
    assert service.page_alerts(db_session, is_resolved=True).total == 1
    assert service.page_alerts(db_session, is_resolved=False, severity="critical").total == 1
    page = service.page_alerts(db_session, skip=1, limit=2)
    items, total = page.items, page.total
    assert total == 4 and len(items) == 2


def test_statistics(db_session: Session) -> None:
    for i, (t, s) in enumerate(
        [
            ("system", "info"),
            ("capacity", "critical"),
            ("capacity", "critical"),
            ("security", "error"),
        ]
    ):
        service.create_alert(db_session, alert_type=t, severity=s, title=f"a{i}")
    admin_notification_service.create_notification(
        db_session, type="system_info", title="t", message="m"
    )
    db_session.commit()
    [resolved, *_] = service.page_alerts(db_session, severity="error").items
    service.resolve_alert(db_session, resolved.id, user_id=None, resolution_notes="ok")
    db_session.commit()
    # The cards' numbers: the alert service's statistics, unread notifications included.
    stats = get_statistics(db_session)
    assert service.get_statistics(db_session) == stats
    assert stats == {
        "unread_notifications": 1,
        "unread_notifications_exact": True,
        "active_alerts": 3,
        "critical_alerts": 2,
        "snoozed_alerts": 0,
        "acknowledged_alerts": 0,
        "resolved_today": 1,
        "total_alerts": 4,
        "total_alerts_exact": True,
        "by_severity": {"info": 1, "warning": 0, "error": 0, "critical": 2},
        "by_type": {
            "security": 0,
            "performance": 0,
            "capacity": 2,
            "integration": 0,
            "database": 0,
            "system": 1,
        },
        "held_back_alerts": 0,
    }


def test_resolved_today_is_counted_in_the_configured_zone(db_session: Session) -> None:
    alert = service.create_alert(db_session, alert_type="system", severity="info", title="x")
    db_session.commit()
    # resolved at 23:30 UTC on 1 March = 00:30 on 2 March in Luxembourg
    resolved_at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    db_session.execute(
        update(PlatformAlert)
        .where(PlatformAlert.id == alert.id)
        .values(is_resolved=True, resolved_at=resolved_at, resolution_notes="n")
    )
    db_session.commit()
    later_utc = datetime(2026, 3, 1, 23, 45, tzinfo=UTC)
    lux = ZoneInfo("Europe/Luxembourg")
    assert service.get_statistics(db_session, tz=lux, now=later_utc)["resolved_today"] == 1
    assert service.get_statistics(db_session, tz=UTC, now=later_utc)["resolved_today"] == 1
    next_day = later_utc + timedelta(hours=1)  # 00:45 UTC on 2 March
    assert service.get_statistics(db_session, tz=UTC, now=next_day)["resolved_today"] == 0
    assert service.get_statistics(db_session, tz=lux, now=next_day)["resolved_today"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alert_type": "weather"}, "alert_type"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"title": "x" * 201}, "title"),
        ({"description": "x" * 10_001}, "description"),
        ({"affected_stores": ["shop-1"]}, "affected_stores"),
        ({"affected_stores": 5}, "affected_stores"),
        ({"affected_systems": [""]}, "affected_systems"),
        ({"metadata": "text"}, "metadata"),
        ({"fingerprint": "f" * 256}, "fingerprint"),
    ],
)
def test_bad_alert_input_is_refused_before_writing(
    db_session: Session, kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"alert_type": "system", "severity": "info", "title": "t"}
    values.update(kwargs)
    with pytest.raises(ValidationError) as info:
        service.create_or_increment_alert(db_session, **values)  # type: ignore[arg-type]
    assert field in info.value.errors
    with pytest.raises(ValidationError):
        service.create_alert(db_session, **values)  # type: ignore[arg-type]
    db_session.commit()
    assert service.page_alerts(db_session).total == 0


def test_batched_occurrences_count_exactly(db_session: Session) -> None:
    alert, created = service.create_or_increment_alert(
        db_session, alert_type="system", severity="error", title="storm", occurrences=5
    )
    assert created is True and alert.occurrence_count == 5
    alert, created = service.create_or_increment_alert(
        db_session, alert_type="system", severity="error", title="storm", occurrences=3
    )
    assert created is False and alert.occurrence_count == 8
    alert, created = service.create_or_increment_alert(
        db_session, alert_type="system", severity="error", title="storm"
    )
    assert created is False and alert.occurrence_count == 9
    with pytest.raises(ValidationError):
        service.create_or_increment_alert(
            db_session, alert_type="system", severity="error", title="storm", occurrences=0
        )
