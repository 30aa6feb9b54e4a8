"""Emails follow each admin's preferences: turned off, left to the digest, or held by quiet
hours and sent as one message when they end (real SMTP on loopback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from notifier import Database, admin_notification_service
from notifier.accounts.users import create_admin
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.enums import DeliveryStatus
from notifier.models import Delivery, DeliveryEndpoint
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


def _admins(database: Database, *names: str, every_priority: bool = True) -> dict[str, int]:
    """Admins ``name@shop.example``; the email rule widened to every priority if asked."""
    with database.session_scope() as db:
        ids = {
            name: create_admin(
                db, email=f"{name}@shop.example", password="pw-123456", display_name=name
            ).id
            for name in names
        }
        endpoint = ensure_default_email_endpoint(db)
        if every_priority:
            endpoint.min_priority = None
        return ids


def _notify(database: Database, title: str, **fields: Any) -> None:
    with database.session_scope() as db:
        admin_notification_service.create_notification(
            db,
            **{"type": "import_failure", "priority": "normal", "title": title, "message": "m"}
            | fields,
        )


def _save(database: Database, admin: int, document: dict[str, Any]) -> None:
    with database.session_scope() as db:
        save_preferences(db, admin, document)


def _pending(database: Database) -> list[Delivery]:
    with database.session_scope() as db:
        rows = list(
            db.scalars(
                select(Delivery)
                .where(Delivery.status == DeliveryStatus.PENDING)
                .order_by(Delivery.id)
            )
        )
        db.expunge_all()
        return rows


def _subjects(sink: MailSink, name: str) -> list[str]:
    return [str(m["Subject"]) for m in sink.to(f"{name}@shop.example")]


def test_each_admin_gets_what_their_preferences_say(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    ids = _admins(database, "dflt", "off", "high", "digest", "mute")
    off = {"mode": "off", "min_level": None}
    _save(database, ids["off"], {"rules": {"email": {"notification:import_failure": off}}})
    _save(
        database,
        ids["high"],
        {
            "rules": {
                "email": {"notification:import_failure": {"mode": "immediate", "min_level": "high"}}
            }
        },
    )
    _save(
        database,
        ids["digest"],
        {
            "rules": {
                "email": {"notification:import_failure": {"mode": "digest", "min_level": None}}
            },
            "digest": {"frequency": "daily", "hour": 8},
        },
    )
    _save(database, ids["mute"], {"channels": {"email": False}})
    _notify(database, "normal import")
    _notify(database, "high import", priority="high")
    _notify(database, "critical security", type="security_alert", priority="critical")
    dispatch_due(database, _settings(url), limit=100)
    assert _subjects(sink, "dflt") == [
        "[NORMAL] import_failure: normal import",
        "[HIGH] import_failure: high import",
        "[CRITICAL] security_alert: critical security",
    ]
    assert _subjects(sink, "off") == ["[CRITICAL] security_alert: critical security"]
    assert _subjects(sink, "high") == [
        "[HIGH] import_failure: high import",
        "[CRITICAL] security_alert: critical security",
    ]
    # The digest takes the imports (see test_digests); the locked one comes at once.
    assert _subjects(sink, "digest") == ["[CRITICAL] security_alert: critical security"]
    # The email switch is off; the required notification still arrives.
    assert _subjects(sink, "mute") == ["[CRITICAL] security_alert: critical security"]


def test_defaults_keep_the_default_email_rule(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    _admins(database, "a", every_priority=False)
    _notify(database, "high import", priority="high")
    _notify(database, "critical import", priority="critical")
    dispatch_due(database, _settings(url), limit=100)
    assert _subjects(sink, "a") == ["[CRITICAL] import_failure: critical import"]


def _quiet_now(zone: str = "UTC") -> tuple[dict[str, Any], datetime]:
    """A quiet window, every day, from an hour ago to an hour from now (minute precision)."""
    now = utcnow().replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    window = {"days": list(range(7)), "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    return {"time_zone": zone, "quiet_hours": [window]}, end


def test_quiet_hours_hold_emails_and_release_them_as_one_message(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    ids = _admins(database, "sleeper", "awake")
    quiet, ends = _quiet_now()
    _save(database, ids["sleeper"], quiet)
    for n in range(3):
        _notify(database, f"import {n}")
    _notify(database, "breach", type="security_alert", priority="critical")
    settings = _settings(url)
    dispatch_due(database, settings, limit=100)
    # Only the required one reached the sleeper; the others wait for the window's end.
    assert _subjects(sink, "sleeper") == ["[CRITICAL] security_alert: breach"]
    assert len(_subjects(sink, "awake")) == 4
    held = _pending(database)
    assert len(held) == 3
    assert {(d.recipient_user_id, d.next_attempt_at, d.hold) for d in held} == {
        (ids["sleeper"], ends.astimezone(UTC), "quiet")
    }
    assert dispatch_due(database, settings, limit=100).total == 0  # still quiet
    with database.session_scope() as db:  # the window ends
        db.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    dispatch_due(database, settings, limit=100)
    subjects = _subjects(sink, "sleeper")
    assert subjects == [
        "[CRITICAL] security_alert: breach",
        "3 notifications during your quiet hours",
    ]
    body = sink.to("sleeper@shop.example")[1].get_body(("plain",))
    assert body is not None
    assert all(f"import {n}" in body.get_content() for n in range(3))
    assert _pending(database) == []


def test_one_held_email_is_sent_as_itself(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    ids = _admins(database, "sleeper")
    quiet, _ = _quiet_now("UTC")
    _save(database, ids["sleeper"], quiet)
    _notify(database, "lonely import")
    with database.session_scope() as db:
        db.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    dispatch_due(database, _settings(url), limit=100)
    assert _subjects(sink, "sleeper") == ["[NORMAL] import_failure: lonely import"]


def test_cap_overflow_goes_to_the_digest_when_the_admin_has_one(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    ids = _admins(database, "digest", "plain")
    _save(database, ids["digest"], {"digest": {"frequency": "hourly", "hour": 8}})
    for n in range(5):
        _notify(database, f"import {n}")
    report = dispatch_due(database, _settings(url, emails_per_hour=3), limit=100)
    assert _subjects(sink, "plain") == [
        "[NORMAL] import_failure: import 0",
        "[NORMAL] import_failure: import 1",
        "3 more notifications",
    ]
    # No summary for the admin with a digest: the cap's room is all single emails, the rest
    # wait for the digest (one more period as a fallback, never dropped).
    assert _subjects(sink, "digest") == [f"[NORMAL] import_failure: import {n}" for n in range(3)]
    assert report.counts["digest"] == 2
    waiting = _pending(database)
    assert [(d.recipient_user_id, d.hold) for d in waiting] == [(ids["digest"], "digest")] * 2
    assert all(d.next_attempt_at > utcnow() + timedelta(minutes=59) for d in waiting)
    with database.session_scope() as db:
        assert db.scalar(select(DeliveryEndpoint.min_priority)) is None
