"""The outbox and its dispatcher against real receivers (HTTP and SMTP on loopback)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from notifier import (
    ConfigurationError,
    Database,
    ValidationError,
    admin_notification_service,
    platform_alert_service,
)
from notifier.accounts.users import create_admin
from notifier.delivery.dispatch import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    DispatchSettings,
    dispatch_batches,
    dispatch_due,
    replay,
    replay_failed_since,
    retry_delay,
)
from notifier.delivery.endpoints import endpoint_service
from notifier.delivery.mail import SmtpSettings
from notifier.enums import DeliveryStatus
from notifier.models import AdminNotification, Delivery, DeliveryAttempt, DeliveryEndpoint
from notifier.outbox import ensure_default_email_endpoint, queued_in
from notifier.types import utcnow
from tests.notifier.conftest import MailSink, Receiver

LOCAL = DispatchSettings(allow_private=True, base_url="https://admin.shop.example")


def _webhook(database: Database, receiver: Receiver, **filters: Any) -> tuple[int, str]:
    with database.session_scope() as db:
        endpoint, secret = endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True, **filters
        )
        assert secret is not None
        return endpoint.id, secret


def _notify(database: Database, **fields: Any) -> int:
    with database.session_scope() as db:
        notification = admin_notification_service.create_notification(
            db,
            **{"type": "import_failure", "title": "Import failed", "message": "bad row"} | fields,
        )
        return notification.id


def _deliveries(database: Database) -> list[Delivery]:
    with database.session_scope() as db:
        rows = list(db.scalars(select(Delivery).order_by(Delivery.id)))
        db.expunge_all()
        return rows


def _make_due(database: Database) -> None:
    """Skip the wait: every pending delivery is due now (the schedule is tested on its own)."""
    with database.session_scope() as db:
        db.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.PENDING)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def test_deliveries_commit_and_roll_back_with_the_notification(
    database: Database, receiver: Receiver
) -> None:
    _webhook(database, receiver)
    with pytest.raises(RuntimeError), database.session_scope() as db:
        notification = admin_notification_service.create_notification(
            db, type="import_failure", title="Rolled back", message="m"
        )
        assert notification.id is not None and queued_in(db) == 1
        raise RuntimeError("the caller's transaction fails")
    assert _deliveries(database) == []
    _notify(database)
    [delivery] = _deliveries(database)
    assert delivery.status is DeliveryStatus.PENDING
    assert receiver.requests == []  # nothing is sent from inside the transaction


def test_a_webhook_arrives_signed_and_verifies_with_standardwebhooks(
    database: Database, receiver: Receiver
) -> None:
    _, secret = _webhook(database, receiver)
    notification_id = _notify(database, priority="high", store_id=5)
    report = dispatch_due(database, LOCAL)
    assert report.counts == {"succeeded": 1}
    [request] = receiver.requests
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "notification.created"
    assert event["id"].startswith("evt_")
    assert event["data"]["id"] == notification_id
    assert event["data"]["priority"] == "high"
    assert event["data"]["store_id"] == 5
    [delivery] = _deliveries(database)
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert request.headers["webhook-id"] == delivery.message_id
    with database.session_scope() as db:
        [attempt] = db.scalars(select(DeliveryAttempt))
        assert (attempt.outcome, attempt.response_status) == ("succeeded", 204)
        assert attempt.duration_ms >= 0


def test_failures_retry_on_schedule_with_the_same_webhook_id(
    database: Database, receiver: Receiver
) -> None:
    _webhook(database, receiver)
    _notify(database)
    receiver.then(503)
    receiver.then(429, {"Retry-After": "120"})
    before = utcnow()
    assert dispatch_due(database, LOCAL).counts == {"retry": 1}
    [delivery] = _deliveries(database)
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert RETRY_DELAYS[1] * 0.8 - 1 <= wait <= RETRY_DELAYS[1] * 1.2 + 1
    assert dispatch_due(database, LOCAL).total == 0  # not due yet
    _make_due(database)
    before = utcnow()
    assert dispatch_due(database, LOCAL).counts == {"retry": 1}
    [delivery] = _deliveries(database)
    # Retry-After (120 s) is later than the schedule's ~5 min? No: the later of the two wins.
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert wait >= max(120, RETRY_DELAYS[2] * 0.8) - 1
    _make_due(database)
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    assert len(set(receiver.ids())) == 1 and len(receiver.ids()) == 3
    with database.session_scope() as db:
        outcomes = [
            a.outcome for a in db.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))
        ]
        statuses = [
            a.response_status
            for a in db.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))
        ]
    assert outcomes == ["retry", "retry", "succeeded"]
    assert statuses == [503, 429, 204]


def test_the_schedule_is_about_0_5s_5min_30min_2h_5h_10h_10h_with_20_percent_jitter() -> None:
    assert RETRY_DELAYS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert retry_delay(1, rng=lambda: 0.0) == pytest.approx(4.0)
    assert retry_delay(1, rng=lambda: 1.0) == pytest.approx(6.0)
    assert retry_delay(7, rng=lambda: 0.5) == pytest.approx(36000)
    assert retry_delay(MAX_ATTEMPTS) is None


def test_other_4xx_fail_at_once_and_410_disables_the_endpoint_and_tells_the_admins(
    database: Database, receiver: Receiver
) -> None:
    endpoint_id, _ = _webhook(database, receiver)
    receiver.then(400, body=b'{"error":"bad"}')
    _notify(database, title="first")
    assert dispatch_due(database, LOCAL).counts == {"failed": 1}
    receiver.then(410)
    _notify(database, title="second")
    assert dispatch_due(database, LOCAL).counts == {"failed": 1}
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.is_enabled
        assert endpoint.disabled_reason == "the receiver answered 410 Gone"
        titles = list(db.scalars(select(AdminNotification.title)))
        assert "Delivery endpoint disabled: ops" in titles
        bodies = list(
            db.scalars(select(DeliveryAttempt.response_body).order_by(DeliveryAttempt.id))
        )
        assert bodies[0] == '{"error":"bad"}'
    _notify(database, title="third")  # a disabled endpoint gets nothing new
    assert len(_deliveries(database)) == 2


def test_after_410_the_run_sends_that_endpoint_nothing_more(
    database: Database, receiver: Receiver
) -> None:
    endpoint_id, _ = _webhook(database, receiver)
    for title in ("first", "second", "third"):
        _notify(database, title=title)
    receiver.then(410)
    # Batches of one: the next batch is claimed while the first is sent, before the 410.
    report = dispatch_batches(database, replace(LOCAL, batch_size=1))
    assert report.counts == {"failed": 1}
    assert len(receiver.requests) == 1
    statuses = [d.status for d in _deliveries(database)]
    assert statuses == [DeliveryStatus.FAILED, DeliveryStatus.PENDING, DeliveryStatus.PENDING]
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.is_enabled


def test_retries_end_after_the_last_attempt_and_replay_starts_over(
    database: Database, receiver: Receiver
) -> None:
    _webhook(database, receiver)
    _notify(database)
    for _ in range(MAX_ATTEMPTS):
        receiver.then(500)
        _make_due(database)
        dispatch_due(database, LOCAL)
    [delivery] = _deliveries(database)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempt_count == MAX_ATTEMPTS
    _make_due(database)
    assert dispatch_due(database, LOCAL).total == 0  # dead is dead
    with database.session_scope() as db:
        assert replay(db, delivery.id) is not None
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    assert len(set(receiver.ids())) == 1  # the replay kept its webhook-id


def test_replay_all_failed_since(database: Database, receiver: Receiver) -> None:
    _webhook(database, receiver)
    for n in range(3):
        receiver.then(404)
        _notify(database, title=f"n{n}")
    assert dispatch_due(database, LOCAL).counts == {"failed": 3}
    with database.session_scope() as db:
        assert replay_failed_since(db, utcnow() - timedelta(hours=1)) == 3
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 3}


def test_an_endpoint_failing_for_five_days_is_disabled(
    database: Database, receiver: Receiver
) -> None:
    endpoint_id, _ = _webhook(database, receiver)
    with database.session_scope() as db:
        db.execute(
            update(DeliveryEndpoint).values(failing_since=utcnow() - timedelta(days=5, minutes=1))
        )
    receiver.then(500)
    _notify(database)
    dispatch_due(database, LOCAL)
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.is_enabled
        assert endpoint.disabled_reason == "every delivery failed for 5 days"


def test_private_addresses_are_refused_unless_allowed(
    database: Database, receiver: Receiver
) -> None:
    _webhook(database, receiver)
    _notify(database)
    assert dispatch_due(database, DispatchSettings()).counts == {"failed": 1}
    assert receiver.requests == []
    with database.session_scope() as db:
        [attempt] = db.scalars(select(DeliveryAttempt))
        assert attempt.error_class == "Refused"
        assert "only https" in (attempt.error or "")


def test_the_filter_picks_events_priorities_types_and_stores(
    database: Database, receiver: Receiver
) -> None:
    _webhook(
        database,
        receiver,
        min_priority="high",
        notification_types=["import_failure"],
        store_ids=[7],
    )
    _notify(database, priority="normal", store_id=7)  # too low
    _notify(database, priority="high", store_id=8)  # other store
    _notify(database, type="order_exception", priority="high", store_id=7)  # other type
    _notify(database, priority="critical", store_id=7)  # taken
    assert len(_deliveries(database)) == 1


def test_alert_events_and_a_flapping_alert_emails_once_per_cooldown(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        create_admin(db, email="ops@shop.example", password="pw-123456", display_name="Ops")
        ensure_default_email_endpoint(db)
    settings = DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"),
        base_url="https://admin.shop.example",
    )
    for _ in range(3):  # opens, resolves, regresses, ...
        with database.session_scope() as db:
            alert, created = platform_alert_service.create_or_increment_alert(
                db,
                alert_type="integration",
                severity="critical",
                title="Letzshop API down",
                fingerprint="letzshop-down",
            )
            assert created
            alert_id = alert.id
        with database.session_scope() as db:
            resolved = platform_alert_service.resolve_alert(
                db, alert_id, user_id=None, resolution_notes="restarted"
            )
            assert resolved is not None
    dispatch_due(database, settings)
    # One email: the opening. The resolved event is not in the default rule, and the two
    # regressions fall inside the cooldown of the first email about this fingerprint.
    [message] = sink.to("ops@shop.example")
    assert message["Subject"] == "[CRITICAL] integration: Letzshop API down"
    assert message["Message-ID"].startswith("<notifier.alert.")


def test_default_email_rule_threads_and_caps_per_recipient_per_hour(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        create_admin(db, email="a@shop.example", password="pw-123456", display_name="A")
        create_admin(db, email="b@shop.example", password="pw-123456", display_name="B")
        ensure_default_email_endpoint(db)
    settings = DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"),
        base_url="https://admin.shop.example",
        emails_per_hour=3,
    )
    _notify(database, priority="high", title="not critical")  # no email by default
    for n in range(6):
        _notify(database, priority="critical", title=f"critical {n}")
    report = dispatch_due(database, settings, limit=100)
    for address in ("a@shop.example", "b@shop.example"):
        received = sink.to(address)
        subjects = [m["Subject"] for m in received]
        assert subjects == [
            "[CRITICAL] import_failure: critical 0",
            "[CRITICAL] import_failure: critical 1",
            "4 more notifications",
        ]
        summary = received[2].get_body(("plain",))
        assert summary is not None and "critical 5" in summary.get_content()
        assert received[0]["List-Id"] == "notifier <notifier.shop.example>"
    assert report.counts["succeeded"] == 12
    _notify(database, priority="critical", title="over the cap")
    assert dispatch_due(database, settings).counts == {"held": 2}
    assert len(sink.messages) == 6
    [held, *_] = [d for d in _deliveries(database) if d.status is DeliveryStatus.PENDING]
    assert held.next_attempt_at > utcnow() + timedelta(minutes=59)


def test_slack_and_teams_get_their_payloads(database: Database, receiver: Receiver) -> None:
    with database.session_scope() as db:
        endpoint_service.create(
            db, name="s", channel="slack", url=receiver.url("/slack"), allow_private=True
        )
        endpoint_service.create(
            db, name="t", channel="teams", url=receiver.url("/teams"), allow_private=True
        )
    _notify(database, priority="critical", title="<!channel> down")
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 2}
    by_path = {r.path: json.loads(r.body) for r in receiver.requests}
    assert "&lt;!channel&gt;" in by_path["/slack"]["text"]
    assert by_path["/teams"]["attachments"][0]["content"]["version"] == "1.4"
    assert "webhook-signature" not in receiver.requests[0].headers


def test_two_dispatchers_at_once_send_each_delivery_once(
    database: Database, receiver: Receiver
) -> None:
    _webhook(database, receiver)
    for n in range(40):
        _notify(database, title=f"n{n}")
    reports = []

    def run() -> None:
        other = Database(database.url)
        try:
            while (report := dispatch_due(other, LOCAL, limit=5)).total:
                reports.append(report)
        finally:
            other.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = receiver.ids()
    assert len(ids) == 40 and len(set(ids)) == 40
    with database.session_scope() as db:
        assert db.scalar(select(func.count()).select_from(DeliveryAttempt)) == 40


def test_a_slow_url_keeps_its_claim_so_a_second_dispatcher_sends_nothing_twice(
    database: Database, receiver: Receiver
) -> None:
    # Six sends of 0.6 s each to one URL take 3.6 s; the claim lasts 2 s. A second
    # dispatcher sweeps all along: it must find nothing of the first one's batch to take.
    settings = replace(LOCAL, claim_lease=timedelta(seconds=2), batch_size=6)
    _webhook(database, receiver)
    for n in range(6):
        _notify(database, title=f"n{n}")
        receiver.stall(0.6)
    first = threading.Thread(target=dispatch_due, args=(database, settings))
    first.start()
    other = Database(database.url)
    try:
        while first.is_alive():
            dispatch_due(other, settings)
            first.join(timeout=0.2)
    finally:
        other.dispose()
    ids = receiver.ids()
    assert len(ids) == 6 and len(set(ids)) == 6, ids
    assert {d.status for d in _deliveries(database)} == {DeliveryStatus.SUCCEEDED}
    with database.session_scope() as db:
        assert db.scalar(select(func.count()).select_from(DeliveryAttempt)) == 6


def test_rotation_signs_with_both_secrets_for_a_day(database: Database, receiver: Receiver) -> None:
    endpoint_id, old = _webhook(database, receiver)
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None
        new = endpoint_service.rotate_secret(db, endpoint)
    _notify(database)
    dispatch_due(database, LOCAL)
    [request] = receiver.requests
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
    with database.session_scope() as db:
        db.execute(
            update(DeliveryEndpoint).values(
                previous_secret_expires_at=utcnow() - timedelta(seconds=1)
            )
        )
    _notify(database)
    dispatch_due(database, LOCAL)
    assert len(receiver.requests[1].headers["webhook-signature"].split(" ")) == 1


def test_send_test_queues_one_event_for_that_endpoint(
    database: Database, receiver: Receiver
) -> None:
    endpoint_id, secret = _webhook(database, receiver)
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None
        assert endpoint_service.send_test(db, endpoint) == 1
    dispatch_due(database, LOCAL)
    event = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert event["type"] == "endpoint.test"


def test_delivery_settings_from_the_environment() -> None:
    settings = DispatchSettings.from_env(
        {
            "NOTIFIER_SMTP_URL": "smtp+starttls://mailer@mail.example:587",
            "NOTIFIER_SMTP_PASSWORD": "pw",
            "NOTIFIER_MAIL_FROM": "notifier@shop.example",
            "NOTIFIER_PUBLIC_URL": "https://admin.shop.example",
            "NOTIFIER_EMAILS_PER_HOUR": "5",
        }
    )
    assert settings.smtp is not None and settings.smtp.password == "pw"
    assert (settings.emails_per_hour, settings.allow_private) == (5, False)
    assert DispatchSettings.from_env({}).smtp is None
    for env, says in [
        ({"NOTIFIER_SMTP_URL": "smtp://mail.example"}, "NOTIFIER_MAIL_FROM"),
        ({"NOTIFIER_EMAILS_PER_HOUR": "0"}, "at least 1"),
        ({"NOTIFIER_PUBLIC_URL": "admin.shop.example"}, "http"),
        ({"NOTIFIER_DELIVERY_ALLOW_PRIVATE": "maybe"}, "boolean"),
    ]:
        with pytest.raises(ConfigurationError, match=says):
            DispatchSettings.from_env(env)


def test_alert_lifecycle_events_reach_a_webhook_in_order(
    database: Database, receiver: Receiver
) -> None:
    _, secret = _webhook(database, receiver)
    for _ in range(2):
        with database.session_scope() as db:
            alert, _ = platform_alert_service.create_or_increment_alert(
                db, alert_type="capacity", severity="warning", title="Disk 90%"
            )
            platform_alert_service.create_or_increment_alert(  # an increment: no event
                db, alert_type="capacity", severity="warning", title="Disk 90%"
            )
            alert_id = alert.id
        with database.session_scope() as db:
            platform_alert_service.resolve_alert(db, alert_id, user_id=None, resolution_notes="ok")
    dispatch_due(database, LOCAL)
    events = [Webhook(secret).verify(r.body, r.headers) for r in receiver.requests]
    assert [e["type"] for e in events] == [
        "alert.opened",
        "alert.resolved",
        "alert.regressed",
        "alert.resolved",
    ]
    assert events[1]["data"]["resolution_notes"] == "ok"
    assert events[2]["data"]["alert_metadata"]["previous_alert_id"] == events[0]["data"]["id"]


def test_a_public_ipv6_literal_is_accepted_at_save_and_private_ones_are_refused(
    database: Database,
) -> None:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db, name="v6", channel="webhook", url="https://[2606:4700::1111]:8443/hook"
        )
        assert endpoint.url == "https://[2606:4700::1111]:8443/hook"
    for url in PRIVATE_V6:
        with database.session_scope() as db, pytest.raises(ValidationError) as refused:
            endpoint_service.create(db, name="v6", channel="webhook", url=url)
        assert "not a public address" in str(refused.value.errors)
    with database.session_scope() as db, pytest.raises(ValidationError) as malformed:
        endpoint_service.create(db, name="v6", channel="webhook", url="https://[::::]/hook")
    assert "bracketed IPv6" in str(malformed.value.errors)


PRIVATE_V6 = [
    "https://[::1]/hook",  # loopback
    "https://[fd12:3456::1]/hook",  # ULA
    "https://[fe80::1]/hook",  # link-local
    "https://[::ffff:a00:1]/hook",  # IPv4-mapped 10.0.0.1
    "https://[::ffff:5db8:d822]/hook",  # IPv4-mapped 93.184.216.34: public, refused too
    "https://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
    "https://[::a9fe:a9fe]/hook",  # IPv4-compatible 169.254.169.254
    "https://[fec0::1]/hook",  # site-local
]


#: 127.0.0.1 and 169.254.169.254 as inet_aton (and so the resolver) also reads them.
PRIVATE_NUMERIC_V4 = [
    "https://2130706433/hook",
    "https://0x7f.1/hook",
    "https://127.1/hook",
    "https://0251.0376.0251.0376/hook",
    "https://169.254.169.254./hook",
]


@pytest.mark.parametrize("url", PRIVATE_V6 + PRIVATE_NUMERIC_V4)
def test_a_private_address_saved_in_development_is_refused_when_used(
    database: Database, url: str
) -> None:
    with database.session_scope() as db:  # saved where private addresses were allowed ...
        endpoint_service.create(db, name="v6", channel="webhook", url=url, allow_private=True)
    _notify(database)
    # ... and used by a dispatcher where they are not: refused before any connection.
    assert dispatch_due(database, DispatchSettings()).counts == {"failed": 1}
    with database.session_scope() as db:
        [attempt] = db.scalars(select(DeliveryAttempt))
        assert (attempt.outcome, attempt.error_class) == ("failed", "Refused")
        assert "not a public address" in (attempt.error or "")
