"""A spool folder that cannot be written, with a real prefork worker: nothing is lost.

Tests run as root, for whom ``chmod`` takes nothing away; a folder replaced by a file (or
a parent that is a file) refuses every write whoever asks, as a folder on a full or
read-only disk would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from celery import Celery
from celery.result import AsyncResult

from notifier import Database, PlatformAlert

from .conftest import WorkerProcess, alerts, notifications, proxied, settle, wait_for

pytestmark = pytest.mark.slow

BOOM = "celery:t.boom:ValueError"


def _fail(app: Celery, stores: Iterable[int]) -> list[AsyncResult]:
    results = [app.tasks["t.boom"].delay(n) for n in stores]
    for result in results:
        result.get(timeout=60, propagate=False)
    assert {r.state for r in results} == {"FAILURE"}
    return results


def _recorded_task_ids(database: Database) -> list[str]:
    return sorted(n.notification_metadata["task_id"] for n in notifications(database))


def _spool_alert(database: Database, spool: Path) -> PlatformAlert:
    [alert] = [a for a in alerts(database) if a.fingerprint.startswith("notifier:spool:")]
    assert alert.alert_type == "system" and not alert.is_resolved
    assert str(spool) in alert.description
    return alert


def test_failures_while_the_spool_folder_cannot_be_written_are_each_recorded_once(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    start_workers({**worker_env, "NOTIFIER_TEST_COOLDOWN": "0"})
    results = _fail(client_app, range(20))
    aside = spool_dir.with_name("spool-aside")
    spool_dir.rename(aside)  # with whatever is still pending in it
    spool_dir.write_text("a file where the spool folder was")
    results += _fail(client_app, range(20, 40))
    spool_dir.unlink()
    aside.rename(spool_dir)
    results += _fail(client_app, range(40, 60))
    settle(worker_database, spool_dir)
    assert _recorded_task_ids(worker_database) == sorted(r.id for r in results)
    by_fingerprint = {a.fingerprint: a for a in alerts(worker_database)}
    assert by_fingerprint[BOOM].occurrence_count == 60
    _spool_alert(worker_database, spool_dir)
    assert not list(spool_dir.glob("*.json")) and not list((spool_dir / "dead").iterdir())


def test_a_spool_folder_that_cannot_be_made_at_start_is_drained_once_it_can(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "volume"
    blocker.write_text("a file where the spool's parent folder should be")
    spool = blocker / "spool"
    worker = start_workers(
        {**worker_env, "NOTIFIER_TEST_SPOOL": str(spool), "NOTIFIER_TEST_COOLDOWN": "0"}
    )
    first = _fail(client_app, range(10))
    wait_for(lambda: len(notifications(worker_database)) >= 10, timeout=30)
    _spool_alert(worker_database, spool)
    blocker.unlink()  # fixed while the worker runs: no restart
    second = _fail(client_app, range(10, 20))
    wait_for(spool.exists, timeout=30)
    settle(worker_database, spool)
    assert _recorded_task_ids(worker_database) == sorted(r.id for r in first + second)
    by_fingerprint = {a.fingerprint: a for a in alerts(worker_database)}
    assert by_fingerprint[BOOM].occurrence_count == 20
    assert worker.proc.poll() is None


def test_failures_neither_the_spool_nor_the_database_takes_wait_in_memory(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    with proxied(worker_database.url) as (proxy, url):
        env = {**worker_env, "NOTIFIER_TEST_DATABASE": url, "NOTIFIER_TEST_COOLDOWN": "0"}
        start_workers(env)
        _fail(client_app, [0])
        settle(worker_database, spool_dir)
        proxy.cut()
        spool_dir.rename(spool_dir.with_name("spool-aside"))
        spool_dir.write_text("a file where the spool folder was")
        held = _fail(client_app, range(1, 11))
        spool_dir.unlink()  # the spool works again first: held reports go there
        spool_dir.with_name("spool-aside").rename(spool_dir)
        wait_for(lambda: len(list(spool_dir.glob("*.json"))) == 10, timeout=30)
        assert len(notifications(worker_database)) == 1
        proxy.restore()
        wait_for(lambda: len(notifications(worker_database)) == 11, timeout=60)
        settle(worker_database, spool_dir)
    assert {r.id for r in held} <= set(_recorded_task_ids(worker_database))
    assert {a.fingerprint: a for a in alerts(worker_database)}[BOOM].occurrence_count == 11
