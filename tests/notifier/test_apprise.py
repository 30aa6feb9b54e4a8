"""Apprise endpoints: a real Apprise sends to a loopback target, with the outbox's retries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from notifier import Database, ValidationError, platform_alert_service
from notifier.delivery.apprise import display_url as apprise_display_url
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.endpoints import display_url, endpoint_service
from notifier.enums import DeliveryStatus
from notifier.models import Delivery, DeliveryAttempt
from notifier.types import utcnow
from tests.receivers import Receiver

LOCAL = DispatchSettings(allow_private=True, base_url="https://admin.shop.example")


def _endpoint(database: Database, url: str) -> int:
    with database.session_scope() as db:
        endpoint, secret = endpoint_service.create(
            db, name="phones", channel="apprise", url=url, allow_private=True
        )
        assert secret is None
        return endpoint.id


def _alert(database: Database, **fields: Any) -> int:
    with database.session_scope() as db:
        alert, _ = platform_alert_service.create_or_increment_alert(
            db,
            **{"alert_type": "database", "severity": "critical", "title": "Replica lag"} | fields,
        )
        return alert.id


def _make_due(database: Database) -> None:
    with database.session_scope() as db:
        db.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def test_a_failure_is_retried_by_the_outbox_once_per_attempt(
    database: Database, receiver: Receiver
) -> None:
    # ?retry=3 asks Apprise to retry on its own; the outbox's schedule is the only one.
    _endpoint(database, f"json://127.0.0.1:{receiver.port}/apprise?retry=3")
    _alert(database)
    receiver.then(503)
    assert dispatch_due(database, LOCAL).counts == {"retry": 1}
    assert len(receiver.requests) == 1
    with database.session_scope() as db:
        [delivery] = db.scalars(select(Delivery))
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.attempt_count == 1
        [attempt] = db.scalars(select(DeliveryAttempt))
        # All Apprise tells: it failed. No status code, no Retry-After.
        assert attempt.outcome == "retry"
        assert attempt.error_class == "AppriseFailure"
        assert attempt.response_status is None
    _make_due(database)
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    first, second = (json.loads(r.body) for r in receiver.requests)
    assert first == second
    assert [r.path for r in receiver.requests] == ["/apprise"] * 2
    assert second["title"] == "[CRITICAL] database: Replica lag"
    assert second["type"] == "failure"  # Apprise's notify type for a critical alert
    assert "https://admin.shop.example/admin/notifications?tab=alerts" in second["message"]


def test_the_egress_rules_hold_for_urls_that_name_a_host(
    database: Database, receiver: Receiver
) -> None:
    with database.session_scope() as db:
        for url in (
            f"json://127.0.0.1:{receiver.port}/",  # plain http
            f"jsons://127.0.0.1:{receiver.port}/",  # TLS, but loopback
            "ntfys://localhost/topic",
            "nonsense://x",  # no Apprise service
        ):
            with pytest.raises(ValidationError) as refused:
                endpoint_service.create(db, name="x", channel="apprise", url=url)
            assert "url" in refused.value.errors, url
        # A service at its fixed public API names no host of ours: nothing to judge.
        telegram = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123"
        endpoint, _ = endpoint_service.create(db, name="tg", channel="apprise", url=telegram)
        assert display_url(endpoint) == "tgram://…"
        endpoint_service.set_enabled(db, endpoint, False)  # this test sends nothing outside
    # Saved where loopback is allowed, refused at send by a dispatcher that is not.
    _endpoint(database, f"json://127.0.0.1:{receiver.port}/apprise")
    _alert(database)
    counts = dispatch_due(database, DispatchSettings()).counts
    assert counts.get("failed") == 1
    assert receiver.requests == []


def test_the_saved_url_never_shows() -> None:
    assert apprise_display_url("pover://user@token") == "pover://…"
    assert apprise_display_url("json://user:secret@host/path?x=1") == "json://…"
