"""Job health in the core: root causes hold back their symptoms; alerts resolve on recovery."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier import (
    RECOVERED,
    AlertType,
    Database,
    FailureReport,
    JobKind,
    Severity,
    platform_alert_service,
    record_runs,
    symptom_of,
    watched_recoveries,
)
from notifier.accounts.users import create_admin
from notifier.delivery import DispatchSettings, dispatch_due, endpoint_service
from notifier.delivery.mail import SmtpSettings
from notifier.models import AdminNotification, Delivery, PlatformAlert
from notifier.outbox import ensure_default_email_endpoint
from tests.receivers import MailSink, Receiver

SCOPE = "database:abc123"
COOLDOWN = timedelta(minutes=15)


def _hook(database: Database, receiver: Receiver) -> int:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
        return endpoint.id


def _root_cause(database: Database) -> int:
    with database.session_scope() as db:
        alert, _ = platform_alert_service.create_or_increment_alert(
            db,
            alert_type=AlertType.DATABASE,
            severity=Severity.CRITICAL,
            title="Database unreachable",
            fingerprint=f"root:{SCOPE}",
            explains=SCOPE,
        )
        return alert.id


def _failure(n: int, *, scopes: list[str] | None = None, store: int | None = None) -> FailureReport:
    return FailureReport(
        key=f"celery:t{n}:failure",
        job=JobKind.IMPORT if store is not None else JobKind.GENERIC,
        task_name="shop.import",
        task_id=f"t{n}",
        store_id=store,
        exception_class="psycopg.OperationalError",
        message="connection refused",
        fingerprint=f"celery:shop.import:psycopg.OperationalError:store={store}",
        scopes=scopes or [],
        resolve_on_success=store is not None,
    )


def _success(n: int, *, store: int | None) -> FailureReport:
    return FailureReport(
        key=f"celery:s{n}:{RECOVERED}",
        job=JobKind.IMPORT,
        event=RECOVERED,
        task_name="shop.import",
        task_id=f"s{n}",
        store_id=store,
    )


def _sent(receiver: Receiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in receiver.requests]


def test_a_symptom_of_an_open_root_cause_is_recorded_held_back_and_not_queued(
    database: Database, receiver: Receiver
) -> None:
    _hook(database, receiver)
    root = _root_cause(database)
    with database.session_scope() as db:
        queued_before = len(db.scalars(select(Delivery.id)).all())  # the root cause's opening
        record_runs(
            db, [_failure(1, scopes=[SCOPE]), _failure(2, scopes=[SCOPE])], cooldown=COOLDOWN
        )
    with database.session_scope() as db:
        alerts = db.scalars(select(PlatformAlert).where(PlatformAlert.id != root)).all()
        notifications = db.scalars(select(AdminNotification)).all()
        assert [a.held_back_by_id for a in alerts] == [root]
        assert {n.held_back_by_id for n in notifications} == {root}
        assert len(db.scalars(select(Delivery.id)).all()) == queued_before  # nothing new
        assert db.get(PlatformAlert, root).held_back_count == 1 + len(notifications)


def test_the_root_cause_resolving_sends_one_summary(database: Database, receiver: Receiver) -> None:
    _hook(database, receiver)
    root = _root_cause(database)
    with database.session_scope() as db:
        record_runs(db, [_failure(1, scopes=[SCOPE])], cooldown=COOLDOWN)
    settings = DispatchSettings(allow_private=True)
    dispatch_due(database, settings)
    with database.session_scope() as db:
        platform_alert_service.resolve_alert(db, root, user_id=None, resolution_notes="back")
    dispatch_due(database, settings)
    events = [(r["type"], r["data"]) for r in _sent(receiver)]  # type: ignore[index]
    assert [kind for kind, _ in events] == ["alert.opened", "alert.resolved"]
    summary = events[1][1]["held_back"]  # type: ignore[index]
    assert summary["alerts"] == 1 and summary["notifications"] == 1
    assert summary["items"][0]["title"].startswith("shop.import failed")


def test_without_a_root_cause_a_symptom_is_delivered(
    database: Database, receiver: Receiver
) -> None:
    _hook(database, receiver)
    with database.session_scope() as db:
        record_runs(db, [_failure(1, scopes=[SCOPE])], cooldown=COOLDOWN)
    dispatch_due(database, DispatchSettings(allow_private=True))
    assert sorted(str(r["type"]) for r in _sent(receiver)) == [
        "alert.opened",
        "notification.created",
    ]


def test_the_race_wait_holds_a_symptom_whose_root_cause_comes_just_after(
    database: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hook(database, receiver)
    monkeypatch.setenv("NOTIFIER_INHIBIT_WAIT", "30")
    with database.session_scope() as db:
        record_runs(db, [_failure(1, scopes=[SCOPE])], cooldown=COOLDOWN)
    settings = DispatchSettings(allow_private=True)
    assert dispatch_due(database, settings).counts == {}  # waiting
    root = _root_cause(database)  # the cause, recorded a moment later
    with database.session_scope() as db:  # the wait is over
        for delivery in db.scalars(select(Delivery)):
            delivery.next_attempt_at -= timedelta(seconds=31)
    dispatch_due(database, settings)
    assert [r["type"] for r in _sent(receiver)] == ["alert.opened"]  # the root cause only
    with database.session_scope() as db:
        symptom = db.scalars(select(PlatformAlert).where(PlatformAlert.id != root)).one()
        assert symptom.held_back_by_id == root
        assert [d for d in db.scalars(select(Delivery)) if d.scopes] == []  # removed


def test_a_success_resolves_the_alert_of_its_task_and_store_and_tells_its_channels(
    database: Database, receiver: Receiver
) -> None:
    endpoint_id = _hook(database, receiver)
    with database.session_scope() as db:
        record_runs(db, [_failure(1, store=7), _failure(2, store=8)], cooldown=COOLDOWN)
    with database.session_scope() as db:
        assert watched_recoveries(db) == {("shop.import", 7), ("shop.import", 8)}
        other, _ = endpoint_service.create(
            db, name="later", channel="webhook", url=receiver.url("/later"), allow_private=True
        )
    with database.session_scope() as db:
        record_runs(db, [_success(1, store=7)], cooldown=COOLDOWN)
    with database.session_scope() as db:
        by_store = {a.affected_stores[0]: a for a in db.scalars(select(PlatformAlert))}
        assert by_store[7].is_resolved and not by_store[8].is_resolved
        assert by_store[7].alert_metadata["resolved_by_run"]["task_id"] == "s1"
        assert by_store[7].resolution_notes.startswith("Resolved automatically")
        resolved = db.scalars(
            select(Delivery.endpoint_id).where(Delivery.event_type == "alert.resolved")
        ).all()
        assert resolved == [endpoint_id]  # the channel that had it, not the one added since
        assert watched_recoveries(db) == {("shop.import", 8)}
        assert other.id != endpoint_id


def test_a_failure_after_the_success_in_the_same_batch_keeps_the_alert_open(
    database: Database,
) -> None:
    with database.session_scope() as db:
        record_runs(db, [_failure(1, store=7)], cooldown=COOLDOWN)
    with database.session_scope() as db:
        record_runs(db, [_success(1, store=7), _failure(3, store=7)], cooldown=COOLDOWN)
    with database.session_scope() as db:
        assert not db.scalars(select(PlatformAlert)).one().is_resolved


def test_a_symptom_recorded_inside_symptom_of_is_held_back(database: Database) -> None:
    root = _root_cause(database)
    with database.session_scope() as db, symptom_of(db, ["queue:x", SCOPE]):
        alert, _ = platform_alert_service.create_or_increment_alert(
            db, alert_type=AlertType.SYSTEM, severity=Severity.ERROR, title="Missed run"
        )
        assert alert.held_back_by_id == root


def test_the_summary_email_names_what_was_held_back(
    database: Database, smtp_server: tuple[str, MailSink]
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        create_admin(db, email="ops@shop.example", password="pw-123456", display_name="ops")
        endpoint = ensure_default_email_endpoint(db)
        endpoint.event_types = [*endpoint.event_types, "alert.resolved"]
    root = _root_cause(database)
    with database.session_scope() as db:
        record_runs(db, [_failure(1, scopes=[SCOPE])], cooldown=COOLDOWN)
        platform_alert_service.resolve_alert(db, root, user_id=None, resolution_notes="back")
    settings = DispatchSettings(smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"))
    dispatch_due(database, settings)
    bodies = [m.get_body(("plain",)).get_content() for m in sink.to("ops@shop.example")]
    summary = [b for b in bodies if "Held back" in b]
    assert len(summary) == 1
    assert "1 alert(s), 1 notification(s): shop.import failed" in summary[0]
