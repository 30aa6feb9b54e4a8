"""What a real worker records: hostile failures, replays, a missing schema, dead letters."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from notifier.worker import install, uninstall
from notifier.worker.events import failure_report
from notifier.worker.spool import Spool

from notifier import Database, upgrade

from .conftest import (
    alerts,
    make_app,
    notification_count,
    notifications,
    settle,
    spool_pending,
    wait_for,
)


def test_failures_postgresql_refuses_as_they_are_still_notify(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    """A NUL in the message and a store id too large for the column: recorded, not dead."""
    nul = celery_app.tasks["t.boom"].apply_async(args=(3,), kwargs={"store_name": "Ac\x00me"})
    big = celery_app.tasks["t.autoretry"].apply_async(args=(2**40,))
    for result in (nul, big):
        result.get(timeout=30, propagate=False)
    settle(worker_database, spool_dir)
    by_task = {n.notification_metadata["task_id"]: n for n in notifications(worker_database)}
    assert set(by_task) == {nul.id, big.id}
    assert "Ac\\x00me" in by_task[nul.id].title
    assert by_task[big.id].store_id is None
    assert by_task[big.id].notification_metadata["store_ref"] == 2**40
    assert not list((spool_dir / "dead").glob("*.json"))


def test_failures_with_text_that_cannot_be_stored_are_each_recorded_once(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    """A file name from os.fsdecode (a lone surrogate) and an exception whose str() raises."""
    path = os.fsdecode(b"/imports/caf\xe9.csv")  # Latin-1 bytes: "/imports/caf\udce9.csv"
    surrogate = celery_app.tasks["t.boom"].apply_async(args=(4,), kwargs={"path": path})
    unprintable = celery_app.tasks["t.unprintable"].apply_async(args=(5,))
    for result in (surrogate, unprintable):
        result.get(timeout=30, propagate=False)
    settle(worker_database, spool_dir)
    notes = notifications(worker_database)
    assert sorted(n.notification_metadata["task_id"] for n in notes) == sorted(
        [surrogate.id, unprintable.id]
    )
    by_task = {n.notification_metadata["task_id"]: n for n in notes}
    arguments = by_task[surrogate.id].notification_metadata["arguments"]
    assert arguments["extra"]["path"] == "/imports/caf\ufffd.csv"
    assert "UnprintableError: <unprintable UnprintableError: str() raised RuntimeError>" in (
        by_task[unprintable.id].message
    )
    assert not list((spool_dir / "dead").glob("*.json"))


@pytest.mark.parametrize("celery_config", [{"notifier_notification_cooldown": 900}])
def test_replayed_spool_files_are_not_counted_again(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    """As after a crash between commit and the spool file's deletion, with the cooldown on."""
    task = celery_app.tasks["t.boom"]
    results = [task.delay(1) for _ in range(10)]
    for result in results:
        result.get(timeout=30, propagate=False)
    settle(worker_database, spool_dir)
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 10 and notification_count(worker_database) == 1
    spool = Spool(spool_dir)
    for result in results:
        report = failure_report(
            task,
            task_id=result.id,
            exc=ValueError("boom for store 1"),
            traceback_text="",
            args=(1,),
            kwargs={},
            attempts=1,
            all_tasks=False,
        )
        assert report is not None
        spool.put(report)
    settle(worker_database, spool_dir)
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 10 and notification_count(worker_database) == 1


def test_a_missing_schema_keeps_failures_spooled_until_init_db(
    redis_url: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    spool = tmp_path / "spool"
    app = make_app(redis_url, url, spool)
    install(app)
    lines = _Lines()
    logger = logging.getLogger("notifier.worker")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)  # the in-process worker logs only errors by default
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
            results = [app.tasks["t.boom"].apply_async(args=(1,)) for _ in range(3)]
            for result in results:
                result.get(timeout=30, propagate=False)
            time.sleep(3)  # the drainer retries meanwhile
            assert spool_pending(spool) == 3
            assert not list((spool / "dead").glob("*.json"))
            told = [line for line in lines.messages if "init-db" in line]
            assert len(told) == 1, told
            assert "schema is missing" in told[0] and "fresh.db" in told[0]
            upgrade(url)
            database = Database(url)
            # three occurrences of one alert; the cooldown makes them one notification
            wait_for(lambda: sum(a.occurrence_count for a in alerts(database)) == 3)
            assert notification_count(database) == 1
            database.dispose()
    finally:
        logger.removeHandler(lines)
        logger.setLevel(logging.NOTSET)
        uninstall(app)
        app.close()


class _Lines(logging.Handler):
    """Keeps the messages logged to the logger it is added to."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_dead_letters_raise_a_platform_alert(
    celery_app: Celery, worker_database: Database, spool_dir: Path, request: Any
) -> None:
    (spool_dir / "dead").mkdir(parents=True)
    (spool_dir / "dead" / "00-old.json").write_text("{}")
    (spool_dir / "00-broken.json").write_text("not json")
    request.getfixturevalue("celery_worker")
    # The in-process test worker sends no worker_ready: its first failure starts the drainer.
    celery_app.tasks["t.boom"].delay(1).get(timeout=30, propagate=False)

    def dead_letter_alerts() -> list[Any]:
        return [a for a in alerts(worker_database) if a.fingerprint.startswith("notifier:")]

    # one occurrence at start for the file already there, one for the file moved there
    wait_for(lambda: sum(a.occurrence_count for a in dead_letter_alerts()) == 2)
    [alert] = dead_letter_alerts()
    assert alert.title == "Failure reports could not be recorded"
    assert str(spool_dir / "dead") in (alert.description or "")
    assert len(list((spool_dir / "dead").glob("*.json"))) == 2
    assert notification_count(worker_database) == 1  # the real failure is recorded as usual
