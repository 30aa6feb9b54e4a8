"""Failures only a real prefork worker shows: a killed child, time limits, storms, outages."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from notifier import Database

from .conftest import WorkerProcess, alerts, notifications, proxied, settle, wait_for

pytestmark = pytest.mark.slow


def test_a_killed_pool_child_notifies_once_with_a_capacity_alert(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    start_workers(worker_env)
    result = client_app.tasks["t.kill"].delay(3)
    result.get(timeout=60, propagate=False)
    settle(worker_database, spool_dir)
    assert result.state == "FAILURE"
    assert type(result.result).__name__ == "WorkerLostError"
    [note] = notifications(worker_database)
    assert note.type == "import_failure" and note.store_id == 3
    [alert] = alerts(worker_database)
    assert alert.alert_type == "capacity"
    assert alert.fingerprint == "celery:t.kill:billiard.exceptions.WorkerLostError"


def test_time_limits(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    start_workers({**worker_env, "NOTIFIER_TEST_TIME_LIMIT": "1"})
    hard = client_app.tasks["t.sleep"].delay(1, 5)
    soft = client_app.tasks["t.soft"].delay(2)
    hard.get(timeout=60, propagate=False)
    soft.get(timeout=60, propagate=False)
    settle(worker_database, spool_dir, quiet=2)
    assert hard.state == "FAILURE" and soft.state == "FAILURE"
    by_task = {n.notification_metadata["task_id"]: n for n in notifications(worker_database)}
    assert set(by_task) == {hard.id, soft.id}  # exactly one each
    kinds = {a.fingerprint: a for a in alerts(worker_database)}
    soft_alert = kinds["celery:t.soft:billiard.exceptions.SoftTimeLimitExceeded"]
    assert soft_alert.alert_type == "performance"
    assert sum(a.occurrence_count for a in kinds.values()) == 2


def test_a_storm_across_two_workers_gives_one_notification_and_an_exact_count(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    start_workers(worker_env)
    start_workers(worker_env)
    results = [client_app.tasks["t.boom"].delay(1) for _ in range(500)]
    for result in results:
        result.get(timeout=120, propagate=False)
    settle(worker_database, spool_dir, timeout=60)
    assert {r.state for r in results} == {"FAILURE"}
    assert len(notifications(worker_database)) == 1
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 500


def _outcome(result: Any) -> tuple[str, str, str, str]:
    exc = result.result
    return (result.state, type(exc).__name__, str(exc), result.traceback or "")


def test_the_plugin_never_changes_a_task_outcome(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("t.boom", (1,), {}),
        ("t.retry_self", (1,), {}),
        ("t.retry_self", (1,), {"succeed_on": 1}),
        ("t.rows", (1, 9), {}),
        ("t.control", (1, "throws"), {}),
        ("t.kill", (1,), {}),
        ("t.unstorable", (1,), {}),
    ]
    outcomes: dict[str, list[Any]] = {}
    for plugin in ("0", "1"):
        worker = start_workers({**worker_env, "NOTIFIER_TEST_PLUGIN": plugin})
        results = [client_app.tasks[name].apply_async(a, k) for name, a, k in calls]
        for result in results:
            result.get(timeout=60, propagate=False)
        outcomes[plugin] = [
            (r.state, repr(r.result) if r.state == "SUCCESS" else _outcome(r)) for r in results
        ]
        worker.stop()
    assert outcomes["0"] == outcomes["1"]
    settle(worker_database, spool_dir)
    assert len(notifications(worker_database)) >= 4


def test_events_survive_a_database_outage_and_a_worker_restart(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    with proxied(worker_database.url) as (proxy, url):
        env = {**worker_env, "NOTIFIER_TEST_DATABASE": url, "NOTIFIER_TEST_COOLDOWN": "0"}
        worker = start_workers(env)
        proxy.cut()
        first = [client_app.tasks["t.boom"].delay(n) for n in range(10)]
        for result in first:
            result.get(timeout=60, propagate=False)
        worker.stop()  # a restart while the database is still down
        worker = start_workers(env)
        second = [client_app.tasks["t.boom"].delay(n) for n in range(10, 20)]
        for result in second:
            result.get(timeout=60, propagate=False)
        assert notifications(worker_database) == []
        results = first + second
        assert [str(r.result) for r in results] == [f"boom for store {n}" for n in range(20)]
        assert {r.state for r in results} == {"FAILURE"}
        time.sleep(1)
        proxy.restore()
        restored = time.monotonic()
        wait_for(lambda: len(notifications(worker_database)) >= 20, timeout=60)
        assert time.monotonic() - restored < 60
        settle(worker_database, spool_dir)
    recorded = sorted(n.notification_metadata["task_id"] for n in notifications(worker_database))
    assert recorded == sorted(r.id for r in results)
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 20


def test_a_killed_drainer_process_is_restarted(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> None:
    import signal

    import psutil

    worker = start_workers(worker_env)

    def drainers() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(worker.proc.pid).children(recursive=True):
            try:  # a killed drainer is a zombie until the worker reaps it
                if "notifier.worker.drainer" in " ".join(child.cmdline()) and child.is_running():
                    found.append(child)
            except psutil.Error:
                continue
        return found

    [first] = wait_for(drainers, 30)
    first.send_signal(signal.SIGKILL)  # as the OOM killer would
    [second] = wait_for(lambda: [p for p in drainers() if p.pid != first.pid], 30)
    assert second.is_running()
    client_app.tasks["t.boom"].delay(4).get(timeout=60, propagate=False)
    wait_for(lambda: notifications(worker_database), 30)
    assert [n.store_id for n in notifications(worker_database)] == [4]
    # Started three times (worker start, restart), the drainer never warns about how it runs.
    assert b"RuntimeWarning" not in worker.log.read_bytes()
