"""A spool folder that cannot be written, with a real prefork worker: nothing is lost.

Tests run as root, for whom ``chmod`` takes nothing away; a folder replaced by a file (or
a parent that is a file) refuses every write whoever asks, as a folder on a full or
read-only disk would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from notifier.worker.events import failure_report
from notifier.worker.spool import Spool
from notifier.worker.spool.choice import database_tag

from notifier import Database, upgrade
from notifier.models import PlatformAlert

from .conftest import (
    Prefork,
    alerts,
    fail,
    family_count,
    finished,
    notifications,
    proxied,
    recorded_task_ids,
    settle,
    spool_pending,
    wait_for,
)

pytestmark = pytest.mark.slow

BOOM = "celery:t.boom:ValueError"


def _spool_alert(database: Database, spool: Path) -> PlatformAlert:
    [alert] = [a for a in alerts(database) if a.fingerprint.startswith("notifier:spool:")]
    assert alert.alert_type == "system" and not alert.is_resolved
    assert str(spool) in alert.description
    return alert


def test_failures_while_the_spool_folder_cannot_be_written_are_each_recorded_once(
    prefork: Prefork,
) -> None:
    prefork.start({**prefork.env, "NOTIFIER_TEST_COOLDOWN": "0"})
    spool_dir = prefork.spool
    results = fail(prefork.client, range(20))
    aside = spool_dir.with_name("spool-aside")
    spool_dir.rename(aside)  # with whatever is still pending in it
    spool_dir.write_text("a file where the spool folder was")
    results += fail(prefork.client, range(20, 40))
    spool_dir.unlink()
    aside.rename(spool_dir)
    results += fail(prefork.client, range(40, 60))
    prefork.settle()
    assert recorded_task_ids(prefork.database) == sorted(r.id for r in results)
    assert family_count(prefork.database, BOOM) == 60
    _spool_alert(prefork.database, spool_dir)
    assert spool_pending(spool_dir) == 0 and not list((spool_dir / "dead").iterdir())


def test_a_spool_folder_that_cannot_be_made_at_start_is_drained_once_it_can(
    prefork: Prefork, tmp_path: Path
) -> None:
    blocker = tmp_path / "volume"
    blocker.write_text("a file where the spool's parent folder should be")
    spool = blocker / "spool"
    worker = prefork.start(
        {**prefork.env, "NOTIFIER_TEST_SPOOL": str(spool), "NOTIFIER_TEST_COOLDOWN": "0"}
    )
    first = fail(prefork.client, range(10))
    wait_for(lambda: len(notifications(prefork.database)) >= 10, timeout=30)
    _spool_alert(prefork.database, spool)
    blocker.unlink()  # fixed while the worker runs: no restart
    second = fail(prefork.client, range(10, 20))
    wait_for(spool.exists, timeout=30)
    settle(prefork.database, spool)
    assert recorded_task_ids(prefork.database) == sorted(r.id for r in first + second)
    assert family_count(prefork.database, BOOM) == 20
    assert worker.proc.poll() is None


def test_failures_neither_the_spool_nor_the_database_takes_wait_in_memory(
    prefork: Prefork,
) -> None:
    spool_dir, database = prefork.spool, prefork.database
    with proxied(database.url) as (proxy, url):
        env = {**prefork.env, "NOTIFIER_TEST_DATABASE": url, "NOTIFIER_TEST_COOLDOWN": "0"}
        prefork.start(env)
        fail(prefork.client, [0])
        prefork.settle()
        proxy.cut()
        spool_dir.rename(spool_dir.with_name("spool-aside"))
        spool_dir.write_text("a file where the spool folder was")
        held = fail(prefork.client, range(1, 11))
        spool_dir.unlink()  # the spool works again first: held reports go there
        spool_dir.with_name("spool-aside").rename(spool_dir)
        wait_for(lambda: spool_pending(spool_dir) == 10, timeout=30)
        assert len(notifications(database)) == 1
        proxy.restore()
        wait_for(lambda: len(notifications(database)) == 11, timeout=60)
        prefork.settle()
    assert {r.id for r in held} <= set(recorded_task_ids(database))
    assert family_count(database, BOOM) == 11


def test_workers_of_two_databases_sharing_a_spool_folder_each_record_their_own(
    prefork: Prefork, tmp_path: Path
) -> None:
    """Two workers started from the same folder, one on PostgreSQL, one on SQLite."""
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other = Database(other_url)
    env_a = {**prefork.env, "NOTIFIER_TEST_QUEUE": "queue-a", "NOTIFIER_TEST_COOLDOWN": "0"}
    env_b = {**env_a, "NOTIFIER_TEST_QUEUE": "queue-b", "NOTIFIER_TEST_DATABASE": other_url}
    prefork.start(env_a)
    worker_b = prefork.start(env_b)
    boom = prefork.client.tasks["t.boom"]
    on_a = finished([boom.apply_async((n,), queue="queue-a") for n in range(15)])
    on_b = finished([boom.apply_async((n,), queue="queue-b") for n in range(15, 30)])
    prefork.settle()
    settle(other, prefork.spool)
    assert recorded_task_ids(prefork.database) == sorted(r.id for r in on_a)
    assert recorded_task_ids(other) == sorted(r.id for r in on_b)

    # B's failure waits in the folder while B is down: A leaves it there, B records it.
    worker_b.stop()
    late = failure_report(
        boom,
        task_id="late-b",
        exc=ValueError("boom"),
        traceback_text="",
        args=(99,),
        kwargs={},
        attempts=1,
        all_tasks=False,
    )
    assert late is not None
    Spool(prefork.spool, database_tag(other_url)).put(late)
    time.sleep(2)  # A's drainer polls every 0.1 s
    assert spool_pending(prefork.spool) == 1
    assert "late-b" not in recorded_task_ids(prefork.database)
    prefork.start(env_b)
    wait_for(lambda: "late-b" in recorded_task_ids(other), timeout=30)
    # It leaves the spool once the transaction that recorded it committed: a moment after.
    wait_for(lambda: spool_pending(prefork.spool) == 0, timeout=10)
    assert recorded_task_ids(prefork.database) == sorted(r.id for r in on_a)
    other.dispose()
