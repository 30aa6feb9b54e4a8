"""Acknowledge and snooze on SQLite and PostgreSQL: who, when, and what the lists then show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier import (
    AlreadyResolvedError,
    DeliveryEvent,
    FailureReport,
    JobKind,
    ValidationError,
    admin_notification_service,
    get_statistics,
    record_failures,
)
from notifier import platform_alert_service as service
from notifier.accounts.users import create_admin
from notifier.models import Delivery, PlatformAlert
from notifier.outbox import ensure_default_email_endpoint
from notifier.types import utcnow


def _alert(db: Session, severity: str = "critical", title: str = "Letzshop down") -> PlatformAlert:
    alert, _ = service.create_or_increment_alert(
        db, alert_type="integration", severity=severity, title=title
    )
    db.commit()
    return alert


def _events(db: Session, alert_id: int) -> list[str]:
    return [
        str(e)
        for e in db.scalars(
            select(Delivery.event_type).where(Delivery.alert_id == alert_id).order_by(Delivery.id)
        )
    ]


def test_acknowledge_records_who_and_when_and_keeps_the_first(db_session: Session) -> None:
    ada = create_admin(db_session, email="ada@shop.example", password="pw-123456")
    bob = create_admin(db_session, email="bob@shop.example", password="pw-123456")
    alert = _alert(db_session)
    before = utcnow()
    acked = service.acknowledge_alert(db_session, alert.id, user_id=ada.id)
    db_session.commit()
    assert acked is not None and acked.acknowledged_by_user_id == ada.id
    assert acked.acknowledged_at is not None and acked.acknowledged_at >= before
    first = acked.acknowledged_at
    again = service.acknowledge_alert(db_session, alert.id, user_id=bob.id)
    assert again is not None and (again.acknowledged_by_user_id, again.acknowledged_at) == (
        ada.id,
        first,
    )
    assert service.get_statistics(db_session)["acknowledged_alerts"] == 1
    assert [a.id for a in service.page_alerts(db_session, acknowledged=True).items] == [alert.id]
    assert service.page_alerts(db_session, acknowledged=False).items == []
    cleared = service.unacknowledge_alert(db_session, alert.id)
    assert cleared is not None and cleared.acknowledged_at is None
    assert cleared.acknowledged_by_user_id is None
    assert service.acknowledge_alert(db_session, 10**6, user_id=ada.id) is None


def test_a_resolved_alert_cannot_be_acknowledged_or_snoozed(db_session: Session) -> None:
    alert = _alert(db_session)
    service.resolve_alert(db_session, alert.id, user_id=None, resolution_notes="fixed")
    db_session.commit()
    until = utcnow() + timedelta(hours=1)
    for change in (
        lambda: service.acknowledge_alert(db_session, alert.id, user_id=None),
        lambda: service.unacknowledge_alert(db_session, alert.id),
        lambda: service.snooze_alert(db_session, alert.id, until=until),
        lambda: service.unsnooze_alert(db_session, alert.id),
    ):
        with pytest.raises(AlreadyResolvedError):
            change()


def test_a_snoozed_alert_leaves_the_counts_and_lists_and_comes_back_by_itself(
    db_session: Session,
) -> None:
    snoozed = _alert(db_session, title="snoozed")
    other = _alert(db_session, severity="warning", title="other")
    now = utcnow()
    service.snooze_alert(db_session, snoozed.id, until=now + timedelta(hours=1))
    db_session.commit()
    stats = get_statistics(db_session)
    assert (stats["active_alerts"], stats["critical_alerts"], stats["snoozed_alerts"]) == (1, 0, 1)
    assert stats["by_severity"]["critical"] == 0
    assert [a.id for a in service.page_alerts(db_session).items] == [other.id]
    assert [a.id for a in service.page_alerts(db_session).items] == [other.id]
    assert [a.id for a in service.page_alerts(db_session, snoozed=True).items] == [snoozed.id]
    # When the time passes it is back: nothing to run, the lists compare with the clock.
    later = now + timedelta(hours=1, seconds=1)
    stats = get_statistics(db_session, now=later)
    assert (stats["active_alerts"], stats["critical_alerts"], stats["snoozed_alerts"]) == (2, 1, 0)
    service.unsnooze_alert(db_session, snoozed.id)
    db_session.commit()
    assert {a.id for a in service.page_alerts(db_session).items} == {snoozed.id, other.id}


@pytest.mark.parametrize(
    ("until", "why"),
    [
        (timedelta(seconds=-1), "must be in the future"),
        (timedelta(0), "must be in the future"),
        (timedelta(days=30, seconds=1), "must be at most 30 days away"),
    ],
)
def test_snooze_until_must_be_ahead_and_within_30_days(
    db_session: Session, until: timedelta, why: str
) -> None:
    alert = _alert(db_session)
    now = utcnow()
    with pytest.raises(ValidationError) as caught:
        service.snooze_alert(db_session, alert.id, until=now + until, now=now)
    assert caught.value.errors == {"until": why}
    with pytest.raises(ValidationError):
        service.snooze_alert(db_session, alert.id, until=(now + until).replace(tzinfo=None))
    assert service.snooze_alert(db_session, alert.id, until=now + timedelta(days=30), now=now)


def test_occurrences_of_a_snoozed_alert_count_silently_until_the_severity_rises(
    db_session: Session,
) -> None:
    create_admin(db_session, email="ops@shop.example", password="pw-123456")
    ensure_default_email_endpoint(db_session)
    alert = _alert(db_session, severity="error")
    service.acknowledge_alert(db_session, alert.id, user_id=None)
    service.snooze_alert(db_session, alert.id, until=utcnow() + timedelta(hours=4))
    db_session.commit()
    fields: dict[str, Any] = {"alert_type": "integration", "title": "Letzshop down"}
    for _ in range(3):
        service.create_or_increment_alert(db_session, severity="error", **fields)
    db_session.commit()
    db_session.refresh(alert)
    assert alert.occurrence_count == 4 and alert.snoozed_until is not None
    assert _events(db_session, alert.id) == []  # error: not in the default email rule anyway
    raised, created = service.create_or_increment_alert(db_session, severity="critical", **fields)
    db_session.commit()
    assert not created and raised.id == alert.id and raised.severity == "critical"
    assert raised.snoozed_until is None and raised.acknowledged_at is None
    assert raised.escalated_at == raised.last_occurred_at
    assert _events(db_session, alert.id) == [str(DeliveryEvent.ALERT_ESCALATED)]
    # Same severity again: counted, nothing queued.
    service.create_or_increment_alert(db_session, severity="critical", **fields)
    db_session.commit()
    assert _events(db_session, alert.id) == [str(DeliveryEvent.ALERT_ESCALATED)]


def _report(key: str) -> FailureReport:
    return FailureReport(
        key=key,
        job=JobKind.SYNC,
        task_name="shop.sync",
        task_id=key,
        store_id=1,
        store_name="store 1",
        exception_class="ConnectionError",
        message="refused",
        fingerprint="sync:shop",
    )


def test_failures_of_a_snoozed_alert_raise_no_notifications(db_session: Session) -> None:
    record_failures(db_session, [_report("k1")], cooldown=timedelta(0))
    db_session.commit()
    [alert] = service.page_alerts(db_session).items
    assert admin_notification_service.get_unread_count(db_session) == 1
    service.snooze_alert(db_session, alert.id, until=utcnow() + timedelta(hours=1))
    db_session.commit()
    record_failures(db_session, [_report("k2")], cooldown=timedelta(0))
    db_session.commit()
    db_session.refresh(alert)
    assert alert.occurrence_count == 2
    assert admin_notification_service.get_unread_count(db_session) == 1


def test_a_regression_after_resolve_is_a_new_unacknowledged_alert_that_notifies(
    db_session: Session,
) -> None:
    create_admin(db_session, email="ops@shop.example", password="pw-123456")
    ensure_default_email_endpoint(db_session)
    alert = _alert(db_session)
    service.acknowledge_alert(db_session, alert.id, user_id=None)
    service.resolve_alert(db_session, alert.id, user_id=None, resolution_notes="fixed")
    # Past the email cooldown of the first email (a quicker flap is one email: test_dispatch).
    db_session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id)
        .values(created_at=utcnow() - timedelta(minutes=16))
    )
    db_session.commit()
    again, created = service.create_or_increment_alert(
        db_session, alert_type="integration", severity="critical", title="Letzshop down"
    )
    db_session.commit()
    assert created and again.id != alert.id and again.acknowledged_at is None
    assert again.alert_metadata["previous_alert_id"] == alert.id
    assert _events(db_session, again.id) == [str(DeliveryEvent.ALERT_REGRESSED)]
