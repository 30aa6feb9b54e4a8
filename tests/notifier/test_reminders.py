"""Reminders of unacknowledged critical alerts, through the dispatcher to a real SMTP server."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select, update

from notifier import Database, DeliveryEvent, DeliveryStatus, queue_reminders
from notifier import platform_alert_service as service
from notifier.accounts.users import create_admin
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.models import Delivery
from notifier.outbox import ensure_default_email_endpoint
from notifier.reminders import reminder_due
from notifier.types import utcnow
from tests.notifier.conftest import MailSink

HOUR = timedelta(hours=1)
INTERVAL = timedelta(hours=4)


def _setup(database: Database, url: str) -> DispatchSettings:
    with database.session_scope() as db:
        create_admin(db, email="ada@shop.example", password="pw-123456", display_name="Ada")
        create_admin(db, email="bob@shop.example", password="pw-123456", display_name="Bob")
        ensure_default_email_endpoint(db)
    return DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"),
        base_url="https://admin.shop.example",
    )


def _open(database: Database, title: str, severity: str = "critical") -> int:
    with database.session_scope() as db:
        alert, _ = service.create_or_increment_alert(
            db, alert_type="integration", severity=severity, title=title
        )
        return alert.id


def _tick(database: Database, now: datetime) -> int:
    with database.session_scope(immediate=True) as db:
        return queue_reminders(db, repeat_interval=INTERVAL, now=now)


def _send(database: Database, settings: DispatchSettings) -> None:
    # Reminders queued at a future ``now`` are due then; the test does not wait for it.
    with database.session_scope() as db:
        db.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.PENDING)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    dispatch_due(database, settings, limit=100)


def _reminded(sink: MailSink, alert_id: int) -> list[str]:
    root = f"<notifier.alert.{alert_id}@shop.example>"
    return sorted(
        str(m["To"])
        for m in sink.messages
        if m["In-Reply-To"] == root and "Reminder" in str(m.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    )


def test_a_reminder_arrives_in_the_alert_thread_once_per_interval(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    settings = _setup(database, url)
    start = utcnow()
    reminded = _open(database, "Letzshop down")
    acknowledged = _open(database, "Disk full")
    snoozed = _open(database, "Queue stuck")
    _open(database, "Slow page", severity="error")  # not critical: no reminders
    with database.session_scope() as db:
        service.acknowledge_alert(db, acknowledged, user_id=None)
        service.snooze_alert(db, snoozed, until=start + 5 * HOUR, now=start)
    _send(database, settings)
    assert len(sink.messages) == 6  # three critical openings, two admins each
    opening = next(m for m in sink.messages if "Letzshop down" in str(m["Subject"]))

    assert _tick(database, start + 3 * HOUR) == 0  # not due yet
    at = start + INTERVAL + timedelta(minutes=1)
    assert _tick(database, at) == 2  # one email for each admin emailed before
    assert _tick(database, at) == 0  # the beat ticked twice: claimed already
    assert _tick(database, at + HOUR / 2) == 0  # same interval
    _send(database, settings)
    assert _reminded(sink, reminded) == ["ada@shop.example", "bob@shop.example"]
    assert _reminded(sink, acknowledged) == _reminded(sink, snoozed) == []
    reminder = next(m for m in sink.messages[6:] if "ada" in str(m["To"]))
    assert reminder["Subject"] == opening["Subject"]
    assert reminder["References"] == opening["Message-ID"]
    assert len(sink.messages) == 8

    # The snooze ended at 5 h and the acknowledgment is withdrawn: both are owed one now.
    with database.session_scope() as db:
        service.unacknowledge_alert(db, acknowledged)
    assert _tick(database, start + 5 * HOUR + timedelta(minutes=1)) == 4
    _send(database, settings)
    assert len(_reminded(sink, acknowledged)) == len(_reminded(sink, snoozed)) == 2
    assert len(_reminded(sink, reminded)) == 2

    # Resolved: no more reminders; the next interval reminds the rest.
    with database.session_scope() as db:
        service.resolve_alert(db, reminded, user_id=None, resolution_notes="fixed")
    assert _tick(database, start + 2 * INTERVAL + timedelta(minutes=1)) == 4
    with database.session_scope() as db:
        events = set(db.scalars(select(Delivery.event_type).where(Delivery.alert_id == reminded)))
    assert DeliveryEvent.ALERT_RESOLVED not in events  # not in the default email rule


def test_two_beats_at_once_queue_one_reminder(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, _ = smtp_server
    _setup(database, url)
    start = utcnow()
    alert_id = _open(database, "Letzshop down")
    at = start + INTERVAL + timedelta(minutes=1)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(_tick(database, at))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [0, 2]
    with database.session_scope() as db:
        reminders = db.scalars(
            select(Delivery.recipient_user_id).where(
                Delivery.alert_id == alert_id, Delivery.event_type == DeliveryEvent.ALERT_REMINDER
            )
        ).all()
    assert len(reminders) == len(set(reminders)) == 2


def test_reminders_count_from_the_opening_or_the_last_escalation() -> None:
    anchor = utcnow()
    assert reminder_due(anchor, anchor + INTERVAL - timedelta(seconds=1), INTERVAL) is None
    assert reminder_due(anchor, anchor + INTERVAL, INTERVAL) == anchor + INTERVAL
    # A beat that was down for a day owes only the current interval.
    assert reminder_due(anchor, anchor + 25 * HOUR, INTERVAL) == anchor + 24 * HOUR
