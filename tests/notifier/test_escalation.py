"""Escalation policies and their step runner, on SQLite and PostgreSQL (real processes race)."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy import select

from notifier import Database, DeliveryEvent, ValidationError
from notifier import platform_alert_service as alerts
from notifier.accounts.users import create_admin
from notifier.delivery import endpoint_service
from notifier.escalation import escalation_service, queue_escalations
from notifier.models import AlertReminder, Delivery, PlatformAlert
from notifier.outbox import ensure_default_email_endpoint, symptom_of
from notifier.types import utcnow

MINUTE = timedelta(minutes=1)
_fork = multiprocessing.get_context("fork")


def _hook(database: Database, name: str, owners: tuple[str, ...] = ()) -> int:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db,
            name=name,
            channel="webhook",
            url=f"http://127.0.0.1:9/{name}",
            allow_private=True,
            owners=owners,
        )
        return endpoint.id


def _open(database: Database, title: str, severity: str = "critical", **extra: str) -> int:
    with database.session_scope() as db:
        alert, _ = alerts.create_or_increment_alert(
            db, alert_type="integration", severity=severity, title=title, **extra
        )
        return alert.id


def _tick(database: Database, now: datetime) -> int:
    with database.session_scope(immediate=True) as db:
        return queue_escalations(db, default_interval=None, now=now)


def _steps_delivered(database: Database, alert_id: int) -> list[tuple[int | None, int]]:
    """(endpoint, step) of each escalation delivery of the alert, in order."""
    with database.session_scope() as db:
        rows = db.execute(
            select(Delivery.endpoint_id, Delivery.payload)
            .where(
                Delivery.alert_id == alert_id, Delivery.event_type == DeliveryEvent.ALERT_REMINDER
            )
            .order_by(Delivery.id)
        ).all()
    return [(endpoint, payload["escalation"]["step"]) for endpoint, payload in rows]


def _two_step_policy(database: Database, first: int, second: int, **extra: object) -> int:
    with database.session_scope() as db:
        policy = escalation_service.create(
            db,
            name="Integrations on call",
            severity="critical",
            steps=[
                {"after_minutes": 10, "endpoint_ids": [first]},
                {"after_minutes": 20, "endpoint_ids": [second]},
            ],
            **extra,
        )
        return policy.id


def test_steps_fire_in_turn_once_each_and_stop_at_acknowledge_snooze_resolve(
    database: Database,
) -> None:
    primary, secondary = _hook(database, "primary"), _hook(database, "secondary")
    _two_step_policy(database, primary, secondary)
    start = utcnow()
    escalated = _open(database, "Letzshop down")
    acknowledged = _open(database, "Disk full")
    snoozed = _open(database, "Queue stuck")
    resolved = _open(database, "Cache cold")
    _open(database, "Slow page", severity="error")  # no policy for errors
    with database.session_scope() as db:
        alerts.acknowledge_alert(db, acknowledged, user_id=None)
        alerts.snooze_alert(db, snoozed, until=start + 6 * timedelta(hours=1), now=start)
        alerts.resolve_alert(db, resolved, user_id=None, resolution_notes="fixed")

    assert _tick(database, start + 9 * MINUTE) == 0
    assert _tick(database, start + 11 * MINUTE) == 1
    assert _tick(database, start + 12 * MINUTE) == 0  # claimed already
    assert _steps_delivered(database, escalated) == [(primary, 1)]
    with database.session_scope() as db:
        alert = db.get(PlatformAlert, escalated)
        assert alert is not None and alert.escalation_step == 1
        assert alert.escalation_step_at == start + 11 * MINUTE
    assert _tick(database, start + 31 * MINUTE) == 1
    assert _steps_delivered(database, escalated) == [(primary, 1), (secondary, 2)]
    # No repeats: the policy ends after its last step.
    assert _tick(database, start + 5 * timedelta(hours=1)) == 0
    for quiet in (acknowledged, snoozed, resolved):
        assert _steps_delivered(database, quiet) == []


def test_acknowledging_between_steps_stops_the_next_one(database: Database) -> None:
    primary, secondary = _hook(database, "primary"), _hook(database, "secondary")
    _two_step_policy(database, primary, secondary, repeat=2)
    start = utcnow()
    alert_id = _open(database, "Letzshop down")
    assert _tick(database, start + 11 * MINUTE) == 1
    with database.session_scope() as db:
        alerts.acknowledge_alert(db, alert_id, user_id=None)
    assert _tick(database, start + 31 * MINUTE) == 0
    assert _tick(database, start + 65 * MINUTE) == 0
    assert _steps_delivered(database, alert_id) == [(primary, 1)]


def test_a_held_back_alert_does_not_escalate(database: Database) -> None:
    primary, secondary = _hook(database, "primary"), _hook(database, "secondary")
    _two_step_policy(database, primary, secondary)
    start = utcnow()
    root = _open(database, "Queue imports has no consumer", explains="queue:imports")
    with database.session_scope() as db:
        with symptom_of(db, ["queue:imports"]):
            symptom, _ = alerts.create_or_increment_alert(
                db, alert_type="integration", severity="critical", title="Import missed"
            )
        assert symptom.held_back_by_id == root
        symptom_id = symptom.id
    assert _tick(database, start + 11 * MINUTE) == 1  # the root cause's step only
    assert _steps_delivered(database, root) == [(primary, 1)]
    assert _steps_delivered(database, symptom_id) == []


def test_repeats_are_bounded(database: Database) -> None:
    primary = _hook(database, "primary")
    with database.session_scope() as db:
        escalation_service.create(
            db,
            name="Page twice",
            severity="critical",
            steps=[{"after_minutes": 10, "endpoint_ids": [primary]}],
            repeat=1,
        )
    start = utcnow()
    alert_id = _open(database, "Letzshop down")
    fired = sum(_tick(database, start + n * MINUTE) for n in range(0, 60, 5))
    assert fired == 2
    with database.session_scope() as db:
        rounds = db.scalars(
            select(Delivery.payload)
            .where(
                Delivery.alert_id == alert_id, Delivery.event_type == DeliveryEvent.ALERT_REMINDER
            )
            .order_by(Delivery.id)
        ).all()
    assert [p["escalation"]["round"] for p in rounds] == [1, 2]


def test_the_most_specific_policy_wins_and_owners_route_to_their_endpoints(
    database: Database,
) -> None:
    general, imports_hook = _hook(database, "general"), _hook(database, "imports")
    owned_only = _hook(database, "owned-only", owners=("team-imports",))
    with database.session_scope() as db:
        for name, owner, target in (
            ("Any", None, general),
            ("Imports", "team-imports", imports_hook),
        ):
            escalation_service.create(
                db,
                name=name,
                severity="critical",
                owner=owner,
                steps=[{"after_minutes": 10, "endpoint_ids": [target]}],
            )
    start = utcnow()
    theirs = _open(database, "Import broken", owner="team-imports")
    others = _open(database, "Sync broken", owner="team-sync")
    assert _tick(database, start + 11 * MINUTE) == 2
    assert _steps_delivered(database, theirs) == [(imports_hook, 1)]
    assert _steps_delivered(database, others) == [(general, 1)]
    # The owner filter: the owned-only endpoint heard of the opening of its owner's alert only.
    with database.session_scope() as db:
        opened = db.scalars(
            select(Delivery.alert_id).where(
                Delivery.endpoint_id == owned_only,
                Delivery.event_type == DeliveryEvent.ALERT_OPENED,
            )
        ).all()
    assert opened == [theirs]


def test_the_default_policy_is_the_reminder_and_is_bounded(database: Database) -> None:
    with database.session_scope() as db:
        create_admin(db, email="ada@shop.example", password="pw-123456")
        ensure_default_email_endpoint(db)
    start = utcnow()
    alert_id = _open(database, "Letzshop down")
    hours = timedelta(hours=1)
    with database.session_scope(immediate=True) as db:
        assert queue_escalations(db, now=start + 3 * hours) == 0
    total = 0
    for n in range(4, 60, 4):
        with database.session_scope(immediate=True) as db:
            total += queue_escalations(db, now=start + n * hours + MINUTE)
    assert total == 6  # the 4-hourly reminder, at most six times (a day)
    with database.session_scope() as db:
        claims = db.scalars(select(AlertReminder.due_at).where(AlertReminder.alert_id == alert_id))
        alert = db.get(PlatformAlert, alert_id)
        assert alert is not None  # the reminder's own claim key: an upgrade sends none twice
        assert sorted(claims)[0] == alert.first_occurred_at + 4 * hours


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"steps": []}, "steps"),
        ({"steps": [{"after_minutes": 0, "episode": True}]}, "steps"),
        ({"steps": [{"after_minutes": 5}]}, "steps"),  # notifies nobody
        ({"steps": [{"after_minutes": 5, "endpoint_ids": [999]}]}, "steps"),
        ({"steps": [{"after_minutes": 5, "user_ids": [999]}]}, "steps"),
        ({"severity": "dire"}, "severity"),
        ({"repeat": -1}, "repeat"),
        ({"repeat": 101}, "repeat"),
        ({"name": "   "}, "name"),
        ({"owner": "x" * 101}, "owner"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(
    db_session: object, fields: dict[str, object], field: str
) -> None:
    base: dict[str, object] = {
        "name": "On call",
        "severity": "critical",
        "steps": [{"after_minutes": 5, "episode": True}],
    }
    with pytest.raises(ValidationError) as caught:
        escalation_service.create(db_session, **{**base, **fields})  # type: ignore[arg-type]
    assert field in caught.value.errors


def test_a_runbook_must_be_an_http_url(database: Database) -> None:
    with database.session_scope() as db, pytest.raises(ValidationError) as caught:
        alerts.create_or_increment_alert(
            db,
            alert_type="system",
            severity="error",
            title="x",
            runbook="javascript:alert(1)",
        )
    assert "runbook" in caught.value.errors


def _racer(url: str, barrier: Barrier, now: datetime, results: multiprocessing.Queue[int]) -> None:
    database = Database(url)
    barrier.wait()
    with database.session_scope(immediate=True) as db:
        results.put(queue_escalations(db, default_interval=None, now=now))
    database.dispose()


def test_two_runner_processes_fire_each_step_once(pg_database: Database, postgres_url: str) -> None:
    primary, secondary = _hook(pg_database, "primary"), _hook(pg_database, "secondary")
    _two_step_policy(pg_database, primary, secondary)
    start = utcnow()
    alert_ids = [_open(pg_database, f"Store {n} down") for n in range(20)]
    for at in (start + 11 * MINUTE, start + 31 * MINUTE):
        barrier, results = _fork.Barrier(2), _fork.Queue()
        racers = [
            _fork.Process(target=_racer, args=(postgres_url, barrier, at, results))
            for _ in range(2)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
        # Between them, one delivery per alert: whoever claimed a step queued it.
        assert sum(results.get(timeout=5) for _ in racers) == len(alert_ids)
    for alert_id in alert_ids:
        assert _steps_delivered(pg_database, alert_id) == [(primary, 1), (secondary, 2)]
