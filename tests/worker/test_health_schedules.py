"""What the Celery side makes of ``beat_schedule``: interval, crontab and solar entries get a
period, a grace and a next due time with no configuration; ``notifier watch -A app`` syncs
and checks them with every worker down."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery
from celery.beat import Service
from celery.schedules import crontab, solar
from notifier.worker import install, uninstall
from notifier.worker.health import sync_schedule, watched_entries
from sqlalchemy import select

from notifier import Database, upgrade
from notifier.health import beat_ticked, run_started, scheduler_state
from notifier.models import PlatformAlert, ScheduleEntry
from tests.worker.conftest import wait_for


@pytest.fixture
def app() -> Celery:
    app = Celery("health-schedules", set_as_current=False)
    app.conf.timezone = "UTC"
    return app


def test_every_kind_of_schedule_gets_a_period_grace_and_due_time(app: Celery) -> None:
    app.conf.beat_schedule = {
        "every-30s": {"task": "a", "schedule": 30.0},
        "every-hour": {"task": "b", "schedule": timedelta(hours=1)},
        "cron-5min": {"task": "c", "schedule": crontab(minute="*/5")},
        "sunset": {"task": "d", "schedule": solar("sunset", 49.61, 6.13)},
        "patient": {"task": "e", "schedule": 30.0, "options": {"notifier_grace": 600}},
    }
    now = datetime.now(UTC)
    entries = {entry.name: entry for entry in watched_entries(app.conf, app)}
    specs = {name: entry.spec(now) for name, entry in entries.items()}
    assert specs["every-30s"].period_seconds == 30 and specs["every-30s"].grace_seconds == 60
    assert specs["every-hour"].grace_seconds == 360  # 10 % of the period above the floor
    assert specs["cron-5min"].period_seconds == 300
    assert specs["cron-5min"].first_due_at.minute % 5 == 0
    assert 0 < (specs["cron-5min"].first_due_at - now).total_seconds() <= 300
    assert 22 * 3600 < specs["sunset"].period_seconds < 26 * 3600
    assert specs["patient"].grace_seconds == 600
    assert "crontab" in specs["cron-5min"].schedule_text
    # The due time after a run started at t is one period after t.
    started = now - timedelta(seconds=10)
    due = entries["every-30s"].next_due_after(started)
    assert abs((due - (started + timedelta(seconds=30))).total_seconds()) < 1


def test_the_grace_floor_and_fraction_come_from_the_app(app: Celery) -> None:
    app.conf.update(
        notifier_schedule_grace_floor=1,
        notifier_schedule_grace_fraction=0.5,
        beat_schedule={
            "fast": {"task": "a", "schedule": 2.0},
            "slow": {"task": "b", "schedule": 60},
        },
    )
    graces = {entry.name: entry.grace_seconds for entry in watched_entries(app.conf, app)}
    assert graces == {"fast": 1.0, "slow": 30.0}


def test_each_entry_knows_its_queue_from_options_routes_or_the_default(app: Celery) -> None:
    app.conf.update(
        task_default_queue="main",
        task_routes={"shop.reports.*": {"queue": "reports"}, "shop.sync": "sync"},
        beat_schedule={
            "explicit": {"task": "shop.sync", "schedule": 60, "options": {"queue": "urgent"}},
            "globbed": {"task": "shop.reports.daily", "schedule": 60},
            "named": {"task": "shop.sync", "schedule": 60},
            "default": {"task": "shop.other", "schedule": 60},
        },
    )
    now = datetime.now(UTC)
    queues = {entry.name: entry.spec(now).queue for entry in watched_entries(app.conf, app)}
    assert queues == {
        "explicit": "urgent",
        "globbed": "reports",
        "named": "sync",
        "default": "main",
    }


def test_entries_sharing_a_task_are_told_apart_by_their_arguments(app: Celery) -> None:
    app.conf.beat_schedule = {
        "store-1": {"task": "sync", "schedule": 60, "args": (1,)},
        "store-2": {"task": "sync", "schedule": 60, "kwargs": {"store": 2}},
    }
    one, two = watched_entries(app.conf, app)
    assert one.matches([1], {}) and not one.matches([], {"store": 2})
    assert two.matches((), {"store": 2}) and not two.matches([1], None)


def test_notifier_watch_syncs_the_schedule_and_alerts_a_missed_entry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    upgrade(url)
    (tmp_path / "shop_worker.py").write_text(
        "from celery import Celery\n"
        "app = Celery('shop')\n"
        f"app.conf.notifier_database_url = {url!r}\n"
        "app.conf.notifier_schedule_grace_floor = 1\n"
        "app.conf.beat_schedule = {'nightly': {'task': 'shop.nightly', 'schedule': 1.0}}\n"
    )
    notifier = str(Path(sys.executable).with_name("notifier"))
    env = {"PATH": "/usr/bin:/bin", "NOTIFIER_INSTANCE_PATH": str(tmp_path / "instance")}

    def watch() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [notifier, "watch", "-A", "shop_worker:app", "--once"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )  # fmt: skip

    first = watch()
    assert first.returncode == 0, first.stderr
    assert "Watching 1 scheduled entries and beat." in first.stdout
    database = Database(url)
    try:
        with database.session_scope() as db:
            assert db.get(ScheduleEntry, "nightly") is not None
        time.sleep(2.5)  # due after 1 s, grace 1 s
        with database.session_scope() as db:
            beat_ticked(db, stale_after_seconds=600)  # beat runs; no worker starts the job
        assert watch().returncode == 0
        with database.session_scope() as db:
            titles = list(db.scalars(select(PlatformAlert.title)))
        assert titles == ["Scheduled job missed: nightly"]
    finally:
        database.dispose()


def test_a_beat_started_without_its_schedule_file_is_expected_a_period_after_its_start(
    app: Celery, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    upgrade(url)
    app.conf.update(
        notifier_database_url=url,
        notifier_spool_dir=str(tmp_path / "spool"),
        beat_schedule={
            "hourly": {"task": "shop.hourly", "schedule": 3600.0},
            "nightly": {"task": "shop.nightly", "schedule": crontab(minute=0, hour=3)},
        },
    )
    database = Database(url)
    sync_schedule(database, app.conf, app)  # a worker's sync
    now = datetime.now(UTC)
    with database.session_scope() as db:  # the store last saw a run 50 minutes ago
        ran = now - timedelta(minutes=50)
        run_started(db, "hourly", task_id="h1", next_due_at=ran + timedelta(hours=1), at=ran)
        nightly = db.get(ScheduleEntry, "nightly")
        assert nightly is not None
        nightly_due = nightly.next_due_at
    install(app)
    beat = Service(app, max_interval=1, schedule_filename=str(tmp_path / "celerybeat-schedule"))
    loop = threading.Thread(target=beat.start, daemon=True)
    started = datetime.now(UTC)
    loop.start()
    try:

        def hourly_due() -> datetime:
            with database.session_scope() as db:
                entry = db.get(ScheduleEntry, "hourly")
                assert entry is not None
                return entry.next_due_at

        # A fresh beat sends it an hour after its own start, so that is when it is due.
        wait_for(lambda: hourly_due() >= started + timedelta(seconds=3599), timeout=20)
        assert hourly_due() <= datetime.now(UTC) + timedelta(seconds=3601)
        with database.session_scope() as db:  # a crontab entry follows the wall clock
            assert (db.get(ScheduleEntry, "nightly") or nightly).next_due_at == nightly_due

        def ticking() -> bool:
            with database.session_scope() as db:
                return scheduler_state(db).state == "running"

        wait_for(ticking, timeout=20)
    finally:
        beat.stop(wait=True)
        loop.join(10)
        uninstall(app)
        database.dispose()
