"""Owners and runbooks: stored on the alert, carried in every payload, routed by owner.

Through the real dispatcher to a loopback HTTP receiver (webhook, Slack, Teams) and a real
SMTP server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta

from notifier import Database, FailureKind, FailureReport, JobKind, record_failures
from notifier.accounts.users import create_admin
from notifier.delivery import endpoint_service
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.models import PlatformAlert
from notifier.outbox import ensure_default_email_endpoint
from tests.notifier.conftest import MailSink, Receiver

RUNBOOK = "https://runbooks.example/imports?step=1&lang=en"


def _endpoint(database: Database, receiver: Receiver, channel: str, **fields: object) -> int:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db,
            name=channel,
            channel=channel,
            url=receiver.url(f"/{channel}"),
            allow_private=True,
            **fields,  # type: ignore[arg-type]
        )
        return endpoint.id


def _fail(database: Database, task: str, key: str, owner: str | None) -> None:
    report = FailureReport(
        key=key,
        job=JobKind.IMPORT,
        kind=FailureKind.WORKER_LOST,  # a critical alert: the default email rule takes it
        task_name=task,
        task_id=key,
        store_id=7,
        exception_class="WorkerLostError",
        fingerprint=f"celery:{task}:WorkerLostError",
        owner=owner,
        runbook=RUNBOOK if owner else None,
    )
    with database.session_scope() as db:
        record_failures(db, [report], cooldown=timedelta(0))


def test_owner_and_runbook_ride_in_every_payload_and_owners_route(
    database: Database, receiver: Receiver, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        create_admin(db, email="ada@shop.example", password="pw-123456")
        ensure_default_email_endpoint(db)
    for channel in ("webhook", "slack", "teams"):
        _endpoint(database, receiver, channel)
    sync_only = receiver.url("/sync-team")
    with database.session_scope() as db:
        endpoint_service.create(
            db,
            name="sync team",
            channel="webhook",
            url=sync_only,
            allow_private=True,
            owners=["team-sync"],
        )

    _fail(database, "shop.imports.products", "celery:t1:failure", "team-imports")
    settings = DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"),
        base_url="https://admin.shop.example",
        allow_private=True,
    )
    dispatch_due(database, settings, limit=100)

    with database.session_scope() as db:
        alert = db.query(PlatformAlert).one()
        assert (alert.owner, alert.runbook) == ("team-imports", RUNBOOK)

    by_path = {r.path: json.loads(r.body) for r in receiver.requests if r.path != "/webhook"}
    hooks = [json.loads(r.body) for r in receiver.requests if r.path == "/webhook"]
    alert_hook = next(h for h in hooks if h["type"] == "alert.opened")
    assert alert_hook["data"]["owner"] == "team-imports"
    assert alert_hook["data"]["runbook"] == RUNBOOK
    notification_hook = next(h for h in hooks if h["type"] == "notification.created")
    assert notification_hook["data"]["notification_metadata"]["owner"] == "team-imports"
    slack = json.dumps(by_path["/slack"])
    assert "team-imports" in slack and RUNBOOK.replace("&", "&amp;") in slack  # escaped
    teams = json.dumps(by_path["/teams"])
    assert "Owner: team-imports" in teams and f"Runbook: {RUNBOOK}" in teams
    mail = next(m for m in sink.messages if "shop.imports.products" in str(m["Subject"]))
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Owner: team-imports" in text and f"Runbook: {RUNBOOK}" in text
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert RUNBOOK.replace("&", "&amp;") in html
    # The sync team's endpoint takes only the sync team's alerts: none of these.
    assert "/sync-team" not in {r.path for r in receiver.requests}

    _fail(database, "shop.sync.orders", "celery:t2:failure", "team-sync")
    dispatch_due(database, settings, limit=100)
    routed = [json.loads(r.body) for r in receiver.requests if r.path == "/sync-team"]
    assert {h["type"] for h in routed} == {"alert.opened", "notification.created"}
    owners = [h["data"].get("owner") or h["data"]["notification_metadata"]["owner"] for h in routed]
    assert owners == ["team-sync", "team-sync"]
