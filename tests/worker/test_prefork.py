"""Failures only a real prefork worker shows: a killed child, time limits, storms, outages."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import (
    Prefork,
    alerts,
    fail,
    family_count,
    finished,
    notifications,
    proxied,
    recorded_task_ids,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_a_killed_pool_child_notifies_once_with_a_capacity_alert(prefork: Prefork) -> None:
    prefork.start(prefork.env)
    [result] = finished([prefork.client.tasks["t.kill"].delay(3)])
    prefork.settle()
    assert result.state == "FAILURE"
    assert type(result.result).__name__ == "WorkerLostError"
    [note] = notifications(prefork.database)
    assert note.type == "import_failure" and note.store_id == 3
    [alert] = alerts(prefork.database)
    assert alert.alert_type == "capacity"
    assert alert.fingerprint == "celery:t.kill:billiard.exceptions.WorkerLostError:store=3"


@pytest.mark.parametrize(
    ("how", "says", "never_says"),
    [
        ("SIGKILL", ["ended by SIGKILL (signal 9)", "out-of-memory killer"], "shutdown"),
        ("SIGTERM", ["ended by SIGTERM (signal 15)", "shutdown or restart"], "out-of-memory"),
    ],
)
def test_a_pool_child_killed_mid_task_names_the_signal_and_what_it_means(
    prefork: Prefork, how: str, says: list[str], never_says: str
) -> None:
    import signal

    import psutil

    worker = prefork.start(prefork.env, concurrency=1)
    result = prefork.client.tasks["t.sleep"].delay(6, 60)
    wait_for(lambda: b"t.sleep[" in worker.log.read_bytes(), 30)  # received by the pool
    time.sleep(1.5)  # and running in its one child
    [child] = [
        p
        for p in psutil.Process(worker.proc.pid).children()
        if "notifier.worker.spool.drainer" not in " ".join(p.cmdline())
    ]
    child.send_signal(getattr(signal, how))
    finished([result])
    prefork.settle()
    assert type(result.result).__name__ == "WorkerLostError"
    [note] = notifications(prefork.database)
    [alert] = alerts(prefork.database)
    for text in (note.message, alert.description or ""):
        assert f"The worker process running this task was {says[0]}" in text
        for phrase in says:
            assert phrase in text
        assert never_says not in text


def test_time_limits(prefork: Prefork) -> None:
    prefork.start({**prefork.env, "NOTIFIER_TEST_TIME_LIMIT": "1"})
    hard = prefork.client.tasks["t.sleep"].delay(1, 5)
    soft = prefork.client.tasks["t.soft"].delay(2)
    finished([hard, soft])
    prefork.settle(quiet=2)
    assert hard.state == "FAILURE" and soft.state == "FAILURE"
    assert recorded_task_ids(prefork.database) == sorted([hard.id, soft.id])  # one each
    kinds = {a.fingerprint: a for a in alerts(prefork.database)}
    soft_alert = kinds["celery:t.soft:billiard.exceptions.SoftTimeLimitExceeded:store=2"]
    assert soft_alert.alert_type == "performance"
    assert sum(a.occurrence_count for a in kinds.values()) == 2


def test_a_storm_across_two_workers_gives_one_notification_and_an_exact_count(
    prefork: Prefork,
) -> None:
    prefork.start(prefork.env)
    prefork.start(prefork.env)
    fail(prefork.client, [1] * 500, timeout=120)
    prefork.settle(timeout=60)
    assert len(notifications(prefork.database)) == 1
    [alert] = alerts(prefork.database)
    assert alert.occurrence_count == 500


def _outcome(result: Any) -> tuple[str, str, str, str]:
    exc = result.result
    return (result.state, type(exc).__name__, str(exc), result.traceback or "")


def test_the_plugin_never_changes_a_task_outcome(prefork: Prefork) -> None:
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
        worker = prefork.start({**prefork.env, "NOTIFIER_TEST_PLUGIN": plugin})
        results = finished([prefork.client.tasks[name].apply_async(a, k) for name, a, k in calls])
        outcomes[plugin] = [
            (r.state, repr(r.result) if r.state == "SUCCESS" else _outcome(r)) for r in results
        ]
        worker.stop()
    assert outcomes["0"] == outcomes["1"]
    prefork.settle()
    assert len(notifications(prefork.database)) >= 4


def test_events_survive_a_database_outage_and_a_worker_restart(prefork: Prefork) -> None:
    with proxied(prefork.database.url) as (proxy, url):
        env = {**prefork.env, "NOTIFIER_TEST_DATABASE": url, "NOTIFIER_TEST_COOLDOWN": "0"}
        worker = prefork.start(env)
        proxy.cut()
        first = fail(prefork.client, range(10))
        worker.stop()  # a restart while the database is still down
        worker = prefork.start(env)
        second = fail(prefork.client, range(10, 20))
        assert notifications(prefork.database) == []
        results = first + second
        assert [str(r.result) for r in results] == [f"boom for store {n}" for n in range(20)]
        time.sleep(1)
        proxy.restore()
        restored = time.monotonic()
        wait_for(lambda: len(notifications(prefork.database)) >= 20, timeout=60)
        assert time.monotonic() - restored < 60
        prefork.settle()
    assert recorded_task_ids(prefork.database) == sorted(r.id for r in results)
    assert family_count(prefork.database, "celery:t.boom:ValueError") == 20


def test_a_killed_drainer_process_is_restarted(prefork: Prefork) -> None:
    import signal

    import psutil

    worker = prefork.start(prefork.env)

    def drainers() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(worker.proc.pid).children(recursive=True):
            try:  # a killed drainer is a zombie until the worker reaps it
                if (
                    "notifier.worker.spool.drainer" in " ".join(child.cmdline())
                    and child.is_running()
                ):
                    found.append(child)
            except psutil.Error:
                continue
        return found

    [first] = wait_for(drainers, 30)
    first.send_signal(signal.SIGKILL)  # as the OOM killer would
    [second] = wait_for(lambda: [p for p in drainers() if p.pid != first.pid], 30)
    assert second.is_running()
    fail(prefork.client, [4])
    wait_for(lambda: notifications(prefork.database), 30)
    assert [n.store_id for n in notifications(prefork.database)] == [4]
    # Started three times (worker start, restart), the drainer never warns about how it runs.
    assert b"RuntimeWarning" not in worker.log.read_bytes()
