"""Concurrency: real processes racing on one fingerprint and one dedup key."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy import func, select

from notifier import (
    STORM_STORES,
    Database,
    FailureReport,
    JobKind,
    admin_notification_service,
    platform_alert_service,
    record_failures,
)
from notifier.models import AdminNotification, PlatformAlert

PROCESSES = 8
CALLS = 500
_fork = multiprocessing.get_context("fork")


def _increment(url: str, barrier: Barrier, calls: int) -> None:
    database = Database(url)
    barrier.wait()
    for _ in range(calls):
        with database.session_scope() as db:
            platform_alert_service.create_or_increment_alert(
                db,
                alert_type="integration",
                severity="error",
                title="Marketplace API unreachable",
                affected_stores=[1],
            )
    database.dispose()


def _create_with_key(url: str, barrier: Barrier, rounds: int) -> None:
    database = Database(url)
    barrier.wait()
    for i in range(rounds):
        with database.session_scope() as db:
            admin_notification_service.create_notification(
                db, type="system_info", title="t", message="m", dedup_key=f"task-1:failure:{i}"
            )
    database.dispose()


def _fail_stores(url: str, barrier: Barrier, stores: int) -> None:
    """Record one import failure for each of ``stores`` stores of its own, one per commit."""
    database = Database(url)
    first = multiprocessing.current_process().pid or 0
    barrier.wait()
    for n in range(stores):
        store = first * 1000 + n
        report = FailureReport(
            key=f"import:{store}",
            job=JobKind.IMPORT,
            task_name="shop.import",
            task_id=str(store),
            store_id=store % 2**31,
            exception_class="ValueError",
            fingerprint=f"celery:shop.import:ValueError:store={store % 2**31}",
            storm_fingerprint="celery:shop.import:ValueError",
        )
        with database.session_scope() as db:
            record_failures(db, [report], cooldown=timedelta(minutes=15))
    database.dispose()


def _run(target: object, url: str, n: int) -> None:
    barrier = _fork.Barrier(PROCESSES)
    procs = [
        _fork.Process(target=target, args=(url, barrier, n))  # type: ignore[arg-type]
        for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES


@pytest.mark.slow
def test_eight_processes_increment_one_alert_exactly(database: Database) -> None:
    """8 processes x 500 calls on one fingerprint: one alert, occurrence_count 4000."""
    _run(_increment, database.url, CALLS)
    with database.session_scope() as db:
        alerts = db.scalars(select(PlatformAlert)).all()
        assert len(alerts) == 1
        assert alerts[0].occurrence_count == PROCESSES * CALLS
        assert alerts[0].affected_stores == [1]


@pytest.mark.slow
def test_racing_dedup_keys_create_one_row_each(database: Database) -> None:
    """8 processes create the same 50 dedup keys: exactly 50 rows, no errors."""
    rounds = 50
    _run(_create_with_key, database.url, rounds)
    with database.session_scope() as db:
        count = db.scalar(select(func.count()).select_from(AdminNotification))
        keys = db.scalar(select(func.count(func.distinct(AdminNotification.dedup_key))))
    assert count == rounds and keys == rounds


@pytest.mark.slow
def test_racing_recorders_start_one_storm_across_stores(database: Database) -> None:
    """8 processes record failures of 5 stores each at once: exactly STORM_STORES - 1
    per-store notifications, one storm notification, every failure counted once."""
    _run(_fail_stores, database.url, 5)
    with database.session_scope() as db:
        notes = db.scalars(select(AdminNotification)).all()
        alerts = {a.fingerprint: a for a in db.scalars(select(PlatformAlert))}
    per_store = [n for n in notes if n.store_id is not None]
    [storm] = [n for n in notes if n.store_id is None]
    assert len(per_store) == STORM_STORES - 1
    assert storm.notification_metadata["store_count"] == STORM_STORES
    assert sum(a.occurrence_count for a in alerts.values()) == PROCESSES * 5
    assert len(alerts) == STORM_STORES  # the per-store ones, and the storm's
    assert len(alerts["celery:shop.import:ValueError"].affected_stores) == PROCESSES * 5
