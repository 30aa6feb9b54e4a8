"""Job health in the store: a missed entry opens one alert (and one bell notification) that
its next finished run resolves; a stopped beat is one alert holding the misses back
(recorded, not delivered); one watcher at a time holds the lease. Each test runs on SQLite
and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import Database
from notifier.health import (
    BEAT_FINGERPRINT,
    EntrySpec,
    beat_ticked,
    check_schedule,
    entry_states,
    missed_fingerprint,
    release_lease,
    run_finished,
    run_started,
    scheduler_state,
    sync_entries,
    take_lease,
    watch_tick,
)
from notifier.models import AdminNotification, PlatformAlert

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _spec(name: str, period: float = 60.0, grace: float = 60.0) -> EntrySpec:
    return EntrySpec(
        name=name,
        task=f"jobs.{name}",
        schedule_text=f"freq: {period:g} seconds",
        period_seconds=period,
        grace_seconds=grace,
        first_due_at=T0 + timedelta(seconds=period),
    )


def _alerts(db: Session, fingerprint: str) -> list[PlatformAlert]:
    query = select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint)
    return list(db.scalars(query.order_by(PlatformAlert.id)))


def _states(db: Session, now: datetime) -> dict[str, str]:
    return {entry.name: entry.state for entry in entry_states(db, now=now)}


def test_a_missed_entry_opens_one_alert_and_its_next_run_resolves_it(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("nightly"), _spec("hourly")], now=T0)
    late = T0 + timedelta(seconds=121)  # due at +60, grace 60
    beat_ticked(db, stale_after_seconds=360, at=late)
    run_started(db, "hourly", task_id="h1", next_due_at=late + timedelta(seconds=60), at=late)
    assert _states(db, late) == {"hourly": "running", "nightly": "missed"}
    check_schedule(db, late)
    check_schedule(db, late + timedelta(seconds=5))  # the same missed slot: no second count
    [alert] = _alerts(db, missed_fingerprint("nightly"))
    assert alert.occurrence_count == 1 and "nightly" in alert.title
    assert "freq: 60 seconds" in (alert.description or "") and "never" in (alert.description or "")
    bell = db.scalars(
        select(AdminNotification).where(AdminNotification.alert_fingerprint == alert.fingerprint)
    ).all()
    assert len(bell) == 1
    assert _alerts(db, missed_fingerprint("hourly")) == []

    finished = late + timedelta(seconds=30)
    run_started(db, "nightly", task_id="n1", next_due_at=finished + timedelta(seconds=60))
    run_finished(db, "nightly", task_id="n1", state="SUCCESS", at=finished)
    db.refresh(alert)
    assert alert.is_resolved and alert.resolved_by_user_id is None
    assert alert.resolution_notes == (
        f"resolved automatically: run n1 finished at {finished.isoformat(timespec='seconds')}"
    )


def test_a_failed_run_resolves_the_miss_and_a_retry_does_not(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("sync")], now=T0)
    late = T0 + timedelta(seconds=200)
    beat_ticked(db, stale_after_seconds=360, at=late)
    check_schedule(db, late)
    run_started(db, "sync", task_id="s1", next_due_at=late + timedelta(seconds=60), at=late)
    run_finished(db, "sync", task_id="s1", state="RETRY", at=late)
    assert not _alerts(db, missed_fingerprint("sync"))[0].is_resolved
    run_finished(db, "sync", task_id="s1", state="FAILURE", at=late)
    assert _alerts(db, missed_fingerprint("sync"))[0].is_resolved


def test_a_stopped_beat_is_one_alert_and_holds_the_misses(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("a"), _spec("b"), _spec("c")], now=T0)
    beat_ticked(db, stale_after_seconds=10, at=T0)
    for seconds in (130, 200, 400):  # beat silent; every entry overdue
        check_schedule(db, T0 + timedelta(seconds=seconds))
    [down] = _alerts(db, BEAT_FINGERPRINT)
    assert down.severity.value == "critical" and down.occurrence_count == 3
    # Each miss is recorded once, held back behind the scheduler's alert.
    for name in "abc":
        [miss] = _alerts(db, missed_fingerprint(name))
        assert miss.held_back_by_id == down.id and miss.occurrence_count == 1
    assert set(_states(db, T0 + timedelta(seconds=400)).values()) == {"held"}
    assert scheduler_state(db, now=T0 + timedelta(seconds=400)).state == "stopped"

    back = T0 + timedelta(seconds=500)
    beat_ticked(db, stale_after_seconds=10, at=back)
    check_schedule(db, back)
    db.refresh(down)
    assert down.is_resolved
    assert (down.resolution_notes or "").startswith("resolved automatically: beat ticked at")
    # Held misses resolve with it; their entries are due again a period later.
    assert all(_alerts(db, missed_fingerprint(name))[0].is_resolved for name in "abc")
    assert set(_states(db, back).values()) == {"ok"}


def test_no_miss_is_alerted_before_beat_was_ever_seen(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("a")], now=T0)
    check_schedule(db, T0 + timedelta(seconds=200))
    assert _alerts(db, missed_fingerprint("a")) == []
    # Never seen for beat's default interval plus grace: the scheduler's alert.
    check_schedule(db, T0 + timedelta(seconds=400))
    assert len(_alerts(db, BEAT_FINGERPRINT)) == 1


def test_an_entry_gone_from_the_schedule_is_no_longer_watched(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("a"), _spec("b")], now=T0)
    sync_entries(db, [_spec("a")], now=T0)
    assert [entry.name for entry in entry_states(db, now=T0)] == ["a"]
    inactive = entry_states(db, now=T0, include_inactive=True)
    assert {entry.name: entry.state for entry in inactive} == {"a": "ok", "b": "inactive"}


def test_one_watcher_holds_the_lease_until_it_expires(db_session: Session) -> None:
    db = db_session
    assert take_lease(db, "one", seconds=10, now=T0)
    assert not take_lease(db, "two", seconds=10, now=T0 + timedelta(seconds=5))
    assert take_lease(db, "one", seconds=10, now=T0 + timedelta(seconds=5))  # renewed
    assert take_lease(db, "two", seconds=10, now=T0 + timedelta(seconds=16))
    release_lease(db, "one")  # not its lease any more: nothing changes
    assert not take_lease(db, "one", seconds=10, now=T0 + timedelta(seconds=17))
    release_lease(db, "two")  # a stopping watcher hands over at once
    assert take_lease(db, "one", seconds=10, now=T0 + timedelta(seconds=17))


def test_watch_tick_runs_the_registered_checks_for_the_lease_holder(database: Database) -> None:
    with database.session_scope() as db:
        sync_entries(db, [_spec("a")], now=T0)
        beat_ticked(db, stale_after_seconds=360, at=T0 + timedelta(seconds=199))
    now = T0 + timedelta(seconds=200)
    assert watch_tick(database, "one", lease_seconds=30, now=now)
    assert not watch_tick(database, "two", lease_seconds=30, now=now)
    with database.session_scope() as db:
        assert len(_alerts(db, missed_fingerprint("a"))) == 1


def test_a_miss_while_beat_is_silent_but_not_yet_stale_waits_for_beat(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("fast", period=1, grace=1)], now=T0)
    beat_ticked(db, stale_after_seconds=5, at=T0 + timedelta(seconds=0.5))  # then beat died
    check_schedule(db, T0 + timedelta(seconds=3))  # overdue, beat not judged yet
    assert _alerts(db, missed_fingerprint("fast")) == []
    check_schedule(db, T0 + timedelta(seconds=6))  # beat stale: its alert, the miss held
    [down] = _alerts(db, BEAT_FINGERPRINT)
    [miss] = _alerts(db, missed_fingerprint("fast"))
    assert miss.held_back_by_id == down.id


def test_a_beat_restarted_without_its_schedule_file_is_expected_when_it_sends(
    db_session: Session,
) -> None:
    db = db_session
    hourly = _spec("hourly", period=3600, grace=360)
    sync_entries(db, [hourly, _spec("stuck")], now=T0)
    ran = T0 + timedelta(hours=1)
    run_started(db, "hourly", task_id="h1", next_due_at=ran + timedelta(hours=1), at=ran)
    run_finished(db, "hourly", task_id="h1", state="SUCCESS", at=ran)
    beat_ticked(db, stale_after_seconds=360, at=ran)
    check_schedule(db, ran)  # "stuck" never ran: its miss is open
    # Beat restarts 50 minutes after that run with no schedule file: its fresh clock sends
    # "hourly" a full period after its start, not 10 minutes later as the store counted.
    restart = ran + timedelta(minutes=50)
    sync_entries(
        db,
        [
            replace(hourly, scheduler_due_at=restart + timedelta(hours=1)),
            replace(_spec("stuck"), scheduler_due_at=restart + timedelta(seconds=60)),
        ],
        now=restart,
    )
    # A later sync whose scheduler sends earlier (a manual run moved the store's count on)
    # never moves a due time back: the store stays on the lenient side.
    sync_entries(db, [replace(hourly, scheduler_due_at=ran), _spec("stuck")], now=restart)
    old_slot_missed = ran + timedelta(hours=1, seconds=361)
    beat_ticked(db, stale_after_seconds=360, at=old_slot_missed)
    check_schedule(db, old_slot_missed)
    assert _alerts(db, missed_fingerprint("hourly")) == []
    assert _states(db, old_slot_missed)["hourly"] == "ok"
    # The open miss keeps its slot (its alert waits for a run), not moved by the restart.
    assert _states(db, old_slot_missed)["stuck"] == "missed"
    # Beat's own slot missed: that is alerted.
    new_slot_missed = restart + timedelta(hours=1, seconds=361)
    beat_ticked(db, stale_after_seconds=360, at=new_slot_missed)
    check_schedule(db, new_slot_missed)
    [miss] = _alerts(db, missed_fingerprint("hourly"))
    assert (restart + timedelta(hours=1)).isoformat(timespec="seconds") in (miss.description or "")
