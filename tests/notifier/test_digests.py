"""Digest emails over real SMTP: what they hold, nothing when there is nothing, and exactly one
per admin and period however many times (and from how many places) the run is started."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from notifier import Database, admin_notification_service, platform_alert_service
from notifier.accounts.users import create_admin
from notifier.delivery.digests import run_digests
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.enums import DeliveryStatus
from notifier.models import Delivery, Digest
from notifier.outbox import ensure_default_email_endpoint
from notifier.preferences.store import save_preferences
from notifier.types import utcnow
from tests.notifier.conftest import MailSink


def _settings(url: str, **extra: Any) -> DispatchSettings:
    return DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"),
        base_url="https://admin.shop.example",
        **extra,
    )


def _admin(database: Database, name: str, preferences: dict[str, Any] | None = None) -> int:
    with database.session_scope() as db:
        admin = create_admin(
            db, email=f"{name}@shop.example", password="pw-123456", display_name=name
        )
        if preferences is not None:
            save_preferences(db, admin.id, preferences)
        return admin.id


HOURLY = {"digest": {"frequency": "hourly", "hour": 0}}


def _notify(database: Database, count: int = 1, **fields: Any) -> None:
    with database.session_scope() as db:
        for n in range(count):
            admin_notification_service.create_notification(
                db,
                **{"type": "import_failure", "priority": "normal", "title": f"t{n}", "message": "m"}
                | fields,
            )


def _body(message: Any) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_digest_counts_by_type_and_priority_and_lists_the_loudest_open_alerts(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    off = {"mode": "off", "min_level": None}
    _admin(database, "all", HOURLY)
    _admin(
        database,
        "picky",
        HOURLY
        | {
            "rules": {
                "email": {
                    "notification:import_failure": off,
                    "alert:capacity": {"mode": "immediate", "min_level": "critical"},
                }
            }
        },
    )
    _admin(database, "none")  # no digest
    _notify(database, 3)
    _notify(database, 2, priority="high")
    _notify(database, 1, type="store_issue", priority="low")
    with database.session_scope() as db:
        for _ in range(7):
            platform_alert_service.create_or_increment_alert(
                db, alert_type="database", severity="error", title="DB slow", fingerprint="db"
            )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="capacity", severity="warning", title="Disk", fingerprint="disk"
        )
    report = run_digests(database, _settings(url))
    assert report.counts == {"sent": 2}
    [everything] = sink.to("all@shop.example")
    assert everything["Subject"] == "Your hourly digest: 6 notifications, 2 alerts"
    text = _body(everything)
    assert "import_failure notifications: 2 high, 3 normal" in text
    assert "store_issue notifications: 1 low" in text
    assert "new database alerts: 1 error" in text
    assert "[ERROR] database: DB slow (7 occurrences)" in text
    assert text.index("DB slow") < text.index("[WARNING] capacity: Disk (1 occurrences)")
    assert "https://admin.shop.example/admin/notifications?tab=alerts" in text
    assert everything["List-Id"] == "notifier <notifier.shop.example>"
    [picky] = sink.to("picky@shop.example")
    assert picky["Subject"] == "Your hourly digest: 1 notifications, 1 alerts"
    assert "import_failure" not in _body(picky) and "Disk" not in _body(picky)
    assert sink.to("none@shop.example") == []


def test_nothing_to_report_sends_nothing(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    admin = _admin(database, "quiet", HOURLY)
    assert run_digests(database, _settings(url)).counts == {"empty": 1}
    assert sink.messages == []
    with database.session_scope() as db:
        [digest] = db.scalars(select(Digest).where(Digest.user_id == admin))
        assert digest.status == "empty"


def test_the_next_digest_counts_only_what_came_after_the_last(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    _admin(database, "a", HOURLY)
    _notify(database, 2)
    now = utcnow()
    run_digests(database, _settings(url), now=now)
    _notify(database, 1, priority="high")
    later = utcnow() + timedelta(hours=1)
    run_digests(database, _settings(url), now=later)
    assert run_digests(database, _settings(url), now=later + timedelta(hours=1)).counts == {
        "empty": 1
    }
    subjects = [m["Subject"] for m in sink.to("a@shop.example")]
    assert subjects == [
        "Your hourly digest: 2 notifications, 0 alerts",
        "Your hourly digest: 1 notifications, 0 alerts",
    ]


def test_ticking_twice_sends_one_digest(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    _admin(database, "a", HOURLY)
    _notify(database)
    now = utcnow()
    assert run_digests(database, _settings(url), now=now).counts == {"sent": 1}
    assert run_digests(database, _settings(url), now=now).total == 0  # the period is taken
    assert len(sink.messages) == 1


def test_two_runs_at_once_send_one_digest_per_admin(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    names = [f"admin{n}" for n in range(4)]
    for name in names:
        _admin(database, name, HOURLY)
    _notify(database, 2)
    now = utcnow()
    start = threading.Barrier(3)
    reports = []

    def beat() -> None:
        start.wait()
        reports.append(run_digests(database, _settings(url), now=now))

    beats = [threading.Thread(target=beat) for _ in range(3)]
    for thread in beats:
        thread.start()
    for thread in beats:
        thread.join(30)
    assert sorted(len(sink.to(f"{name}@shop.example")) for name in names) == [1, 1, 1, 1]
    assert sum(r.counts.get("sent", 0) for r in reports) == 4
    with database.session_scope() as db:
        assert len(list(db.scalars(select(Digest)))) == 4


def test_quiet_hours_hold_the_digest_until_they_end(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    now = utcnow().replace(second=0, microsecond=0)
    window = {
        "days": list(range(7)),
        "start": f"{now - timedelta(hours=1):%H:%M}",
        "end": f"{now + timedelta(minutes=59):%H:%M}",
    }
    _admin(database, "sleeper", HOURLY | {"quiet_hours": [window]})
    _notify(database, 2)
    assert run_digests(database, _settings(url), now=now).total == 0
    assert sink.messages == []
    # One minute after the quiet hours end. Never past the next hour's start: an hourly
    # digest covers the hour before its period, and at hh:59 "an hour and a minute later"
    # began a period whose hour came after the notifications (this failed at 15:59).
    after = now + timedelta(hours=1)
    assert run_digests(database, _settings(url), now=after).counts == {"sent": 1}
    assert sink.to("sleeper@shop.example")[0]["Subject"].startswith("Your hourly digest: 2 ")


def test_emails_over_the_cap_go_out_in_the_digest_and_are_closed(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    _admin(database, "busy", HOURLY)
    with database.session_scope() as db:
        ensure_default_email_endpoint(db).min_priority = None
    _notify(database, 4)
    dispatch_due(database, _settings(url, emails_per_hour=2), limit=100)
    assert len(sink.messages) == 2
    run_digests(database, _settings(url))
    digest = sink.to("busy@shop.example")[-1]
    text = _body(digest)
    assert "2 emails over this hour's limit, held for this digest" in text
    assert "[NORMAL] import_failure: t3" in text
    with database.session_scope() as db:
        statuses = list(db.scalars(select(Delivery.status)))
    assert statuses == [DeliveryStatus.SUCCEEDED] * 4


def test_without_smtp_nothing_is_claimed(database: Database) -> None:
    _admin(database, "a", HOURLY)
    _notify(database)
    assert run_digests(database, DispatchSettings()).total == 0
    with database.session_scope() as db:
        assert list(db.scalars(select(Digest))) == []
