"""PagerDuty Events API v2 endpoints against a loopback receiver that checks the schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from notifier import (
    Database,
    ValidationError,
    admin_notification_service,
    platform_alert_service,
)
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.endpoints import display_url, endpoint_service
from notifier.delivery.pagerduty import DEFAULT_URL, event_body
from notifier.enums import DeliveryChannel, DeliveryEvent, DeliveryStatus
from notifier.models import Delivery, DeliveryAttempt, DeliveryEndpoint
from notifier.types import utcnow
from tests.receivers import Receiver, events_v2_answer, events_v2_errors, serve_receiver

LOCAL = DispatchSettings(allow_private=True, base_url="https://admin.shop.example")
KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


@pytest.fixture
def pagerduty() -> Iterator[Receiver]:
    """A loopback Events API v2: 202 for a valid event, 400 with the reasons otherwise."""
    yield from serve_receiver(answer=events_v2_answer)


def _endpoint(database: Database, receiver: Receiver, **fields: Any) -> int:
    with database.session_scope() as db:
        endpoint, secret = endpoint_service.create(
            db,
            name="on call",
            channel="pagerduty",
            url=receiver.url("/v2/enqueue"),
            routing_key=KEY,
            allow_private=True,
            **fields,
        )
        assert secret is None  # the admin typed the key: it is never handed back
        return endpoint.id


def _sent(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in receiver.requests]


def _alert(database: Database, **fields: Any) -> tuple[int, str]:
    with database.session_scope() as db:
        alert, _ = platform_alert_service.create_or_increment_alert(
            db,
            **{"alert_type": "database", "severity": "critical", "title": "Replica lag"} | fields,
        )
        return alert.id, alert.fingerprint


def test_an_alerts_life_is_an_incidents_life(database: Database, pagerduty: Receiver) -> None:
    _endpoint(database, pagerduty)
    alert_id, fingerprint = _alert(database, affected_systems=["db-replica-2"])
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    with database.session_scope() as db:
        platform_alert_service.acknowledge_alert(db, alert_id, user_id=None)
    with database.session_scope() as db:  # a second acknowledgment changes nothing: no event
        platform_alert_service.acknowledge_alert(db, alert_id, user_id=None)
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    with database.session_scope() as db:
        platform_alert_service.resolve_alert(db, alert_id, user_id=None, resolution_notes="ok")
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    _alert(database)  # the same fingerprint again: a regression
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}

    events = _sent(pagerduty)
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve", "trigger"]
    assert {e["dedup_key"] for e in events} == {fingerprint}
    assert {e["routing_key"] for e in events} == {KEY}
    assert [r.path for r in pagerduty.requests] == ["/v2/enqueue"] * 4
    trigger = events[0]
    assert trigger["payload"]["summary"] == "database: Replica lag"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "db-replica-2"
    assert trigger["links"] == [
        {
            "href": "https://admin.shop.example/admin/notifications?tab=alerts",
            "text": "Open in notifier",
        }
    ]
    assert "payload" not in events[1]  # acknowledge and resolve carry the key alone
    with database.session_scope() as db:
        statuses = {a.response_status for a in db.scalars(select(DeliveryAttempt))}
    assert statuses == {202}  # every event passed the receiver's schema check


def test_severities_map_and_lengths_stay_within_pagerdutys_limits(
    database: Database, pagerduty: Receiver
) -> None:
    _endpoint(database, pagerduty)
    _alert(database, title="x" * 200, fingerprint="f" * 255)
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    [event] = _sent(pagerduty)
    assert event["payload"]["summary"] == "database: " + "x" * 200
    long = Delivery(
        event_type=DeliveryEvent.ALERT_OPENED,
        occurred_at=utcnow(),
        payload={"title": "y" * 5000, "severity": "bogus", "fingerprint": "g" * 400},
    )
    clipped = json.loads(event_body(long, KEY))
    assert len(clipped["payload"]["summary"]) == 1024
    assert clipped["payload"]["severity"] == "error"  # an unknown level pages as an error
    assert len(clipped["dedup_key"]) == 255
    assert event["dedup_key"] == "f" * 255
    severities = []
    for severity in ("info", "warning", "error", "critical"):
        _alert(database, severity=severity, title="Disk", fingerprint=f"disk-{severity}")
        severities.append(severity)
    dispatch_due(database, LOCAL)
    assert [e["payload"]["severity"] for e in _sent(pagerduty)[1:]] == severities


def test_429_backs_off_for_retry_after_then_the_same_event_goes(
    database: Database, pagerduty: Receiver
) -> None:
    _endpoint(database, pagerduty)
    _, fingerprint = _alert(database)
    pagerduty.then(429, {"Retry-After": "120"}, b'{"status":"throttle event"}')
    before = utcnow()
    assert dispatch_due(database, LOCAL).counts == {"retry": 1}
    with database.session_scope() as db:
        [delivery] = db.scalars(select(Delivery))
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.next_attempt_at >= before + timedelta(seconds=119)
        db.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    first, second = _sent(pagerduty)
    assert first == second and first["dedup_key"] == fingerprint


def test_acknowledgments_go_to_pagerduty_and_webhooks_not_to_chat(
    database: Database, pagerduty: Receiver
) -> None:
    _endpoint(database, pagerduty)
    with database.session_scope() as db:
        for channel in ("webhook", "slack", "teams"):
            endpoint_service.create(
                db,
                name=channel,
                channel=channel,
                url=pagerduty.url(f"/{channel}"),
                allow_private=True,
            )
        # A notification is no incident: PagerDuty does not get one.
        admin_notification_service.create_notification(
            db, type="import_failure", title="Import failed", message="bad row"
        )
    alert_id, _ = _alert(database)
    with database.session_scope() as db:
        platform_alert_service.acknowledge_alert(db, alert_id, user_id=None)
    with database.session_scope() as db:
        rows = db.execute(select(Delivery.event_type, Delivery.channel)).all()
    got = {(str(event), str(channel)) for event, channel in rows}
    assert ("alert.acknowledged", "pagerduty") in got
    assert ("alert.acknowledged", "webhook") in got
    assert {c for e, c in got if e == "alert.acknowledged"} == {"pagerduty", "webhook"}
    assert {e for e, c in got if c == "pagerduty"} == {"alert.opened", "alert.acknowledged"}


def test_the_routing_key_is_required_checked_and_never_shown(
    database: Database, pagerduty: Receiver
) -> None:
    with database.session_scope() as db:
        with pytest.raises(ValidationError) as missing:
            endpoint_service.create(db, name="pd", channel="pagerduty")
        assert "routing_key" in missing.value.errors
        with pytest.raises(ValidationError) as short:
            endpoint_service.create(db, name="pd", channel="pagerduty", routing_key="abc")
        assert "routing_key" in short.value.errors
        with pytest.raises(ValidationError) as elsewhere:
            endpoint_service.create(
                db, name="w", channel="webhook", url="https://hooks.example.com/", routing_key=KEY
            )
        assert "routing_key" in elsewhere.value.errors
        endpoint, _ = endpoint_service.create(db, name="pd", channel="pagerduty", routing_key=KEY)
        assert endpoint.url == DEFAULT_URL  # PagerDuty's own Events API unless told otherwise
        assert KEY not in display_url(endpoint) and display_url(endpoint) == DEFAULT_URL


def test_the_url_is_held_to_the_egress_rules(database: Database, pagerduty: Receiver) -> None:
    with database.session_scope() as db:
        for url in (pagerduty.url("/v2/enqueue"), "https://127.0.0.1/v2/enqueue"):
            with pytest.raises(ValidationError) as refused:
                endpoint_service.create(
                    db, name="pd", channel="pagerduty", url=url, routing_key=KEY
                )
            assert "url" in refused.value.errors
    _endpoint(database, pagerduty)  # allowed where tests allow loopback
    _alert(database)
    # A dispatcher not allowed private addresses refuses the saved loopback URL at send.
    report = dispatch_due(database, DispatchSettings(base_url="https://admin.shop.example"))
    assert report.counts == {"failed": 1}
    assert pagerduty.requests == []


def test_runbook_and_extra_links_from_the_alert_payload_go_along() -> None:
    delivery = Delivery(
        event_type=DeliveryEvent.ALERT_OPENED,
        channel=DeliveryChannel.PAGERDUTY,
        alert_id=7,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        payload={
            "alert_type": "system",
            "severity": "warning",
            "title": "Queue backlog",
            "fingerprint": "queue",
            "runbook": "https://wiki.example.com/runbooks/queue",
            "links": [{"href": "https://grafana.example.com/d/q", "text": "Dashboard"}, "junk"],
        },
    )
    body = event_body(delivery, KEY, link="https://admin.example.com/admin/notifications")
    assert events_v2_errors(body) == []
    event = json.loads(body)
    assert event["links"] == [
        {"href": "https://admin.example.com/admin/notifications", "text": "Open in notifier"},
        {"href": "https://wiki.example.com/runbooks/queue", "text": "Runbook"},
        {"href": "https://grafana.example.com/d/q", "text": "Dashboard"},
    ]
    assert event["payload"]["timestamp"] == "2026-01-02T03:04:05Z"


def test_a_test_event_is_an_info_trigger_under_a_key_of_its_own(
    database: Database, pagerduty: Receiver
) -> None:
    endpoint_id = _endpoint(database, pagerduty)
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None
        endpoint_service.send_test(db, endpoint)
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    [event] = _sent(pagerduty)
    assert event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "info"
    assert event["dedup_key"] == f"notifier-endpoint-test-{endpoint_id}"
