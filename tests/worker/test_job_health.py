"""Real ``celery beat`` and prefork workers on Redis: a missed entry alerts within its grace
plus 60 s and resolves itself after the next run; a beat whose loop hangs (its process
alive) is one alert, and the misses it causes are recorded but held back behind it, never
delivered (PostgreSQL and SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from notifier import Database, upgrade
from notifier.health import BEAT_FINGERPRINT, missed_fingerprint
from notifier.models import AdminNotification, Delivery, PlatformAlert, ScheduleEntry
from tests.conftest import RABBITMQ_URL, REDIS_URL, require_service
from tests.worker.conftest import HERE, wait_for

from .health_test_app import NOBODY

#: The queue the main worker consumes (named for this test: RabbitMQ is shared).
QUEUE = "health-schedule-main"


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """A new SQLite file, migrated."""
    url = f"sqlite:///{tmp_path / 'health.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _alerts(database: Database, fingerprint: str) -> list[PlatformAlert]:
    with database.session_scope() as db:
        query = select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint)
        return list(db.scalars(query.order_by(PlatformAlert.id)))


def _entry(database: Database, name: str) -> ScheduleEntry | None:
    with database.session_scope() as db:
        return db.get(ScheduleEntry, name)


def _bell(database: Database, fingerprint: str) -> list[AdminNotification]:
    with database.session_scope() as db:
        query = select(AdminNotification).where(AdminNotification.alert_fingerprint == fingerprint)
        return list(db.scalars(query))


def _alerts_since(database: Database, prefix: str, after_id: int) -> list[PlatformAlert]:
    with database.session_scope() as db:
        query = select(PlatformAlert).where(
            PlatformAlert.fingerprint.startswith(prefix), PlatformAlert.id > after_id
        )
        return list(db.scalars(query))


def _deliveries_of(database: Database, alerts: list[PlatformAlert]) -> int:
    """Deliveries queued for these alerts or for their bell notifications."""
    with database.session_scope() as db:
        bells = select(AdminNotification.id).where(
            AdminNotification.dedup_key.in_([f"health:{alert.id}" for alert in alerts])
        )
        unheld_bells = len(
            db.scalars(bells.where(AdminNotification.held_back_by_id.is_(None))).all()
        )
        count = db.scalar(
            select(func.count()).where(
                (Delivery.alert_id.in_([alert.id for alert in alerts]))
                | Delivery.notification_id.in_(bells)
            )
        )
        return int(count or 0) + unheld_bells


class _Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("ab")
        command = [sys.executable, "-m", "celery", "-A", "health_test_app", *args]
        self.proc = subprocess.Popen(
            command, env=env, cwd=str(HERE), stdout=self.handle, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.handle.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("store", "broker"), [("postgresql", "redis"), ("sqlite", "redis"), ("postgresql", "rabbitmq")]
)
def test_a_missed_entry_alerts_resolves_and_a_hung_beat_holds_the_misses(
    store: str, broker: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    health_database: Database = request.getfixturevalue(
        "pg_database" if store == "postgresql" else "sqlite_database"
    )
    broker_url = request.getfixturevalue("redis_url")
    if broker == "rabbitmq":
        require_service("RabbitMQ", RABBITMQ_URL)
        broker_url = RABBITMQ_URL
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1])]),
        "NOTIFIER_TEST_BROKER": broker_url,
        "NOTIFIER_TEST_QUEUE": QUEUE,
        "NOTIFIER_TEST_BACKEND": REDIS_URL,
        "NOTIFIER_TEST_DATABASE": health_database.url,
        "NOTIFIER_TEST_SPOOL": str(tmp_path / "spool"),
        "NOTIFIER_HEALTH_WATCH_EVERY": "0.5",
        "NOTIFIER_TEST_HANG_FILE": str(tmp_path / "hang"),
    }
    worker_args = ["worker", "-P", "prefork", "-c", "1", "-l", "INFO", "--without-gossip",
                   "--without-mingle", "--without-heartbeat"]  # fmt: skip
    processes = []
    try:
        processes.append(_Process([*worker_args, "-Q", QUEUE, "-n", "main@%h"], env,
                                  tmp_path / "worker.log"))  # fmt: skip
        beat_args = ["beat", "-l", "INFO", "--max-interval", "1", "-s", str(tmp_path / "beat"),
                     "-S", "health_test_app:HangingScheduler"]  # fmt: skip
        beat = _Process(beat_args, env, tmp_path / "beat.log")
        processes.append(beat)

        missed = missed_fingerprint("health-missed")
        [alert] = wait_for(lambda: _alerts(health_database, missed), timeout=60)
        entry = _entry(health_database, "health-missed")
        assert entry is not None and entry.last_started_at is None
        late = alert.first_occurred_at - (
            entry.next_due_at + timedelta(seconds=entry.grace_seconds)
        )
        print(f"\nmissed run alerted {late.total_seconds():.1f} s after its due time plus grace")
        assert late < timedelta(seconds=60)
        assert "health-missed" in alert.title and "never" in (alert.description or "")
        assert len(_bell(health_database, missed)) == 1  # in the bell, once
        # The entry a worker runs is fine: its runs are recorded, no alert.
        wait_for(lambda: (_entry(health_database, "health-ok") or entry).last_success_at)
        assert _alerts(health_database, missed_fingerprint("health-ok")) == []

        # A worker for its queue runs it: the alert resolves itself.
        processes.append(_Process([*worker_args, "-Q", NOBODY, "-n", "other@%h"], env,
                                  tmp_path / "other.log"))  # fmt: skip
        wait_for(lambda: _alerts(health_database, missed)[0].is_resolved, timeout=60)
        [resolved] = _alerts(health_database, missed)
        # The entry's run finishing (the watcher) or its task's success (the worker's
        # recovery path), whichever is first: the same record, with the run.
        assert (resolved.resolution_notes or "").lower().startswith("resolved automatically")
        assert resolved.alert_metadata["resolved_by_run"]["task_name"] == "h.elsewhere"

        # Beat's loop hangs, its process and threads alive: one scheduler alert; per-entry
        # misses while it is open are recorded but held back behind it, none delivered.
        hung_at = time.monotonic()
        (tmp_path / "hang").touch()
        [down] = wait_for(lambda: _alerts(health_database, BEAT_FINGERPRINT), timeout=60)
        print(f"hung beat alerted after {time.monotonic() - hung_at:.1f} s")
        assert down.severity.value == "critical"
        time.sleep(4)  # several periods and watcher ticks with beat hung
        assert beat.proc.poll() is None  # alive all along: only its loop stopped
        assert len(_alerts(health_database, BEAT_FINGERPRINT)) == 1
        symptoms = _alerts_since(health_database, "schedule:missed:", resolved.id)
        assert symptoms
        # A miss the watcher saw in the tick before beat's own silence limit is the race
        # NOTIFIER_INHIBIT_WAIT covers (recorded, never delivered: checked below); every
        # miss recorded once the root cause is open is held back behind it.
        since_down = [s for s in symptoms if s.first_occurred_at >= down.first_occurred_at]
        assert all(symptom.held_back_by_id == down.id for symptom in since_down)
        assert _deliveries_of(health_database, symptoms) == 0
    finally:
        for process in reversed(processes):
            process.stop()
