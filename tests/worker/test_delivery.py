"""A failing job reaches a webhook: the worker records it and its drainer sends it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from notifier import Database
from notifier.delivery import endpoint_service
from notifier.models import PlatformAlert
from tests.receivers import Receiver, events_v2_answer, events_v2_errors, serve_receiver

from .conftest import wait_for


@pytest.fixture
def local_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback receivers need plain http and private addresses (tests and dev only)."""
    monkeypatch.setenv("NOTIFIER_DELIVERY_ALLOW_PRIVATE", "true")


def test_a_final_failure_is_delivered_to_a_webhook_right_after_it_is_recorded(
    local_delivery: None,
    worker_database: Database,
    receiver: Receiver,
    celery_app: Any,
    celery_worker: Any,
) -> None:
    with worker_database.session_scope() as db:
        _, secret = endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    assert secret is not None
    started = time.monotonic()
    celery_app.send_task("t.boom", args=[7]).get(propagate=False, timeout=30)
    wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
    elapsed = time.monotonic() - started
    events = {
        event["type"]: event
        for event in (Webhook(secret).verify(r.body, r.headers) for r in receiver.requests)
    }
    assert set(events) == {"alert.opened", "notification.created"}
    notification = events["notification.created"]["data"]
    assert notification["type"] == "import_failure"
    assert notification["store_id"] == 7
    assert events["alert.opened"]["data"]["fingerprint"] == notification["alert_fingerprint"]
    # Woken by the commit, not by the 5 s sweep (generous bound: a shared, busy machine).
    assert elapsed < 4.5, elapsed


def test_a_final_failure_triggers_pagerduty_with_the_alert_fingerprint(
    local_delivery: None, worker_database: Database, celery_app: Any, celery_worker: Any
) -> None:
    served = serve_receiver(answer=events_v2_answer)
    pagerduty = next(served)
    try:
        with worker_database.session_scope() as db:
            endpoint_service.create(
                db,
                name="on call",
                channel="pagerduty",
                url=pagerduty.url("/v2/enqueue"),
                routing_key="R0UT1NGKEY0123456789abcdefABCDEF",
                allow_private=True,
            )
        celery_app.send_task("t.boom", args=[7]).get(propagate=False, timeout=30)
        wait_for(lambda: pagerduty.requests, timeout=30)
        [request] = pagerduty.requests  # the alert; its notification is no incident
        assert events_v2_errors(request.body) == []
        event = json.loads(request.body)
        assert event["event_action"] == "trigger"
        with worker_database.session_scope() as db:
            [fingerprint] = db.scalars(select(PlatformAlert.fingerprint))
        assert event["dedup_key"] == fingerprint
    finally:
        served.close()
