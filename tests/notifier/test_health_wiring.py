"""Job health wired together: the scheduler and queue alerts are root causes, a missed run
is their symptom (recorded, shown held back, not delivered, summarised on resolve), misses
and hung runs resolve on their task's next run, and the hung-run check runs under the
watcher's lease. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier import Database, FailureReport, JobKind, utcnow
from notifier.delivery import endpoint_service
from notifier.health import (
    BEAT_FINGERPRINT,
    NO_CONSUMER_FINGERPRINT,
    RECOVERED,
    EntrySpec,
    OverdueRun,
    QueueObservation,
    beat_ticked,
    check_hung_runs,
    check_queues,
    check_schedule,
    entry_states,
    missed_fingerprint,
    record_heartbeat,
    resolve_recovered,
    root_cause_titles,
    run_finished,
    run_started,
    sync_entries,
    watch_tick,
)
from notifier.models import AdminNotification, Delivery, PlatformAlert

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _spec(
    name: str, period: float = 60.0, grace: float = 60.0, queue: str | None = None
) -> EntrySpec:
    return EntrySpec(
        name=name,
        task=f"jobs.{name}",
        schedule_text=f"freq: {period:g} seconds",
        period_seconds=period,
        grace_seconds=grace,
        first_due_at=T0 + timedelta(seconds=period),
        queue=queue,
    )


def _overdue(
    task_id: str, started_at: datetime, task_name: str = "shop.import", hostname: str = "w1@box"
) -> OverdueRun:
    """A run a worker reports past the default limit (600 s, "floor")."""
    return OverdueRun(
        task_id=task_id,
        task_name=task_name,
        hostname=hostname,
        started_at=started_at,
        limit_seconds=600,
        limit_source="floor",
    )


def _alerts(db: Session, fingerprint: str) -> list[PlatformAlert]:
    """Every alert with ``fingerprint``, oldest first (a regression is a new row)."""
    query = select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint)
    return list(db.scalars(query.order_by(PlatformAlert.id)))


def _alert(db: Session, fingerprint: str) -> PlatformAlert:
    query = select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint)
    return db.scalars(query.order_by(PlatformAlert.id.desc())).first()  # type: ignore[return-value]


def test_the_scheduler_and_a_queue_without_consumer_are_root_causes(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("a")], now=T0)
    beat_ticked(db, stale_after_seconds=10, at=T0)
    check_schedule(db, T0 + timedelta(seconds=130))
    assert _alert(db, BEAT_FINGERPRINT).explains == "scheduler"
    check_queues(db, [QueueObservation(name="imports", depth=3)], now=T0)
    assert _alert(db, f"{NO_CONSUMER_FINGERPRINT}imports").explains == "queue:imports"


def _hook(db: Session) -> int:
    endpoint, _ = endpoint_service.create(
        db, name="ops", channel="webhook", url="http://127.0.0.1:9/ops", allow_private=True
    )
    return endpoint.id


def _deliveries(db: Session, alert: PlatformAlert) -> list[Delivery]:
    query = select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.id)
    return list(db.scalars(query))


def test_misses_while_beat_is_down_are_recorded_held_back_and_summarised(
    db_session: Session,
) -> None:
    db = db_session
    _hook(db)
    sync_entries(db, [_spec("a"), _spec("b")], now=T0)
    beat_ticked(db, stale_after_seconds=10, at=T0)
    for seconds in (130, 200):
        check_schedule(db, T0 + timedelta(seconds=seconds))
    down = _alert(db, BEAT_FINGERPRINT)
    misses = [_alert(db, missed_fingerprint(name)) for name in "ab"]
    # Recorded and shown, marked held back by the scheduler's alert, not delivered.
    assert all(miss is not None and miss.held_back_by_id == down.id for miss in misses)
    assert all(miss.occurrence_count == 1 for miss in misses)
    assert root_cause_titles(db, [down.id]) == {
        down.id: "The scheduler (celery beat) is not running"
    }
    assert all(_deliveries(db, miss) == [] for miss in misses)
    bells = db.scalars(
        select(AdminNotification).where(
            AdminNotification.alert_fingerprint.like("schedule:missed:%")
        )
    ).all()
    assert len(bells) == 2 and all(bell.held_back_by_id == down.id for bell in bells)
    bell_ids = [bell.id for bell in bells]
    bell_deliveries = select(func.count()).where(Delivery.notification_id.in_(bell_ids))
    assert db.scalar(bell_deliveries) == 0
    assert {entry.state for entry in entry_states(db, now=T0 + timedelta(seconds=200))} == {"held"}
    db.refresh(down)
    assert down.held_back_count == 4  # two alerts, two bell notifications

    back = T0 + timedelta(seconds=300)
    beat_ticked(db, stale_after_seconds=10, at=back)
    check_schedule(db, back)
    [resolved] = [d for d in _deliveries(db, down) if d.event_type.value == "alert.resolved"]
    summary = resolved.payload["held_back"]
    assert summary["alerts"] == 2 and summary["notifications"] == 2
    assert [item["title"] for item in summary["items"]] == [
        "Scheduled job missed: a",
        "Scheduled job missed: b",
    ]
    for miss in misses:
        db.refresh(miss)
        assert miss.is_resolved and _deliveries(db, miss) == []  # quiet: the summary named it


def test_a_miss_on_a_queue_without_consumer_is_held_back_by_that_queue(
    db_session: Session,
) -> None:
    db = db_session
    _hook(db)
    sync_entries(db, [_spec("report", queue="reports"), _spec("other", queue="celery")], now=T0)
    check_queues(db, [QueueObservation(name="reports", depth=2)], now=T0)
    root = _alert(db, f"{NO_CONSUMER_FINGERPRINT}reports")
    late = T0 + timedelta(seconds=130)
    beat_ticked(db, stale_after_seconds=360, at=late)
    check_schedule(db, late)
    held, delivered = (
        _alert(db, missed_fingerprint("report")),
        _alert(db, missed_fingerprint("other")),
    )
    assert held.held_back_by_id == root.id and _deliveries(db, held) == []
    assert delivered.held_back_by_id is None and len(_deliveries(db, delivered)) == 1


def _resolved_to(db: Session, alert: PlatformAlert) -> list[int | None]:
    return [d.endpoint_id for d in _deliveries(db, alert) if d.event_type.value == "alert.resolved"]


def test_a_miss_resolves_with_its_run_to_the_channels_that_had_it(db_session: Session) -> None:
    db = db_session
    had = _hook(db)
    sync_entries(db, [_spec("nightly")], now=T0)
    late = T0 + timedelta(seconds=130)
    beat_ticked(db, stale_after_seconds=360, at=late)
    check_schedule(db, late)
    miss = _alert(db, missed_fingerprint("nightly"))
    assert miss.recovery_task == "jobs.nightly"
    later, _ = endpoint_service.create(
        db, name="later", channel="webhook", url="http://127.0.0.1:9/later", allow_private=True
    )
    run_started(db, "nightly", task_id="n1", next_due_at=late + timedelta(seconds=60), at=late)
    run_finished(db, "nightly", task_id="n1", state="FAILURE", at=late + timedelta(seconds=5))
    db.refresh(miss)
    assert miss.is_resolved and miss.resolution_notes is not None
    assert miss.resolution_notes.startswith("resolved automatically: run n1 finished at")
    by_run = miss.alert_metadata["resolved_by_run"]
    assert (by_run["task_name"], by_run["task_id"], by_run["state"]) == (
        "jobs.nightly",
        "n1",
        "FAILURE",
    )
    assert _resolved_to(db, miss) == [had]  # not the endpoint added since
    assert later.id != had


def test_a_hung_run_resolves_with_its_own_run_only(db_session: Session) -> None:
    db = db_session
    had = _hook(db)
    run = _overdue("hung-1", T0 - timedelta(hours=1))
    ttl = timedelta(seconds=35)
    record_heartbeat(db, "w1@box", pid=1, queues=["celery"], overdue=[run], ttl=ttl, now=T0)
    check_hung_runs(db, T0)
    hung = _alert(db, "run:overdue:hung-1")
    assert hung.recovery_task == "shop.import"
    # Another run of the same task succeeding says nothing about this one.
    other = FailureReport(
        key="celery:ok-2:recovered",
        job=JobKind.GENERIC,
        event=RECOVERED,
        task_name="shop.import",
        task_id="ok-2",
    )
    assert resolve_recovered(db, [other]) == []
    later = T0 + timedelta(seconds=10)
    record_heartbeat(db, "w1@box", pid=1, queues=["celery"], overdue=[], ttl=ttl, now=later)
    check_hung_runs(db, later)
    db.refresh(hung)
    assert hung.is_resolved and hung.resolution_notes == "resolved automatically: run finished"
    assert hung.alert_metadata["resolved_by_run"]["task_id"] == "hung-1"
    assert _resolved_to(db, hung) == [had]


def test_a_heartbeat_older_than_its_runs_end_does_not_reopen_the_alert(
    db_session: Session,
) -> None:
    db = db_session
    ttl = timedelta(seconds=35)
    run = _overdue("hung-2", T0 - timedelta(hours=1))
    record_heartbeat(db, "w1@box", pid=1, queues=["celery"], overdue=[run], ttl=ttl, now=T0)
    check_hung_runs(db, T0)
    hung = _alert(db, "run:overdue:hung-2")
    # The run ends: its own success resolves the alert at once...
    ended = FailureReport(
        key="celery:hung-2:recovered",
        job=JobKind.GENERIC,
        event=RECOVERED,
        task_name="shop.import",
        task_id="hung-2",
    )
    assert resolve_recovered(db, [ended]) != []
    db.refresh(hung)
    assert hung.is_resolved
    # ...while the worker's last heartbeat, written a moment before, still lists it.
    check_hung_runs(db, T0 + timedelta(seconds=5))
    assert [a.is_resolved for a in _alerts(db, "run:overdue:hung-2")] == [True]
    # A later run under the same task id (a retry) that hangs is news again.
    again = _overdue("hung-2", utcnow() + timedelta(seconds=1))
    later = again.started_at + timedelta(minutes=11)
    record_heartbeat(db, "w1@box", pid=1, queues=["celery"], overdue=[again], ttl=ttl, now=later)
    check_hung_runs(db, later)
    assert [a.is_resolved for a in _alerts(db, "run:overdue:hung-2")] == [True, False]


def test_the_hung_run_check_runs_under_the_watchers_lease(database: Database) -> None:
    run = _overdue("hung-2", T0 - timedelta(hours=1), task_name="shop.sync", hostname="w2@box")
    with database.session_scope() as db:
        record_heartbeat(
            db, "w2@box", pid=1, queues=[], overdue=[run], ttl=timedelta(seconds=35), now=T0
        )
    assert watch_tick(database, "one", lease_seconds=30, now=T0)
    assert not watch_tick(database, "two", lease_seconds=30, now=T0)
    with database.session_scope() as db:
        hung = _alert(db, "run:overdue:hung-2")
        assert hung is not None and hung.occurrence_count == 1
