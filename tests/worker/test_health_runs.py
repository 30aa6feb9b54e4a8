"""Job health with real prefork workers: a hung run alerts (its limit from the durations
earlier workers stored) and resolves by itself, and a queue that holds a message nobody
consumes alerts (Redis and RabbitMQ, PostgreSQL and SQLite)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery import Celery
from notifier.worker.health import RunWatch

from notifier import Database, upgrade
from notifier.health import record_durations, shared_p99s
from notifier.models import PlatformAlert, TaskDurations
from tests.conftest import RABBITMQ_URL, require_service

from .conftest import WorkerProcess, alerts, make_app, wait_for, worker_test_tasks


@pytest.fixture(params=["postgresql", "sqlite"])
def worker_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The store the workers record into: PostgreSQL (emptied) or one SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_database")
        return
    url = f"sqlite:///{tmp_path / 'health.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, redis_url: str) -> str:
    if request.param == "rabbitmq":
        require_service("RabbitMQ", RABBITMQ_URL)
        return RABBITMQ_URL
    return redis_url


def _alert(database: Database, fingerprint: str) -> PlatformAlert | None:
    return next((a for a in alerts(database) if a.fingerprint == fingerprint), None)


def _purge(app: Celery, queue: str) -> None:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        try:
            channel.queue_delete(queue)
        finally:
            channel.close()


@pytest.mark.rabbitmq
def test_a_hung_run_alerts_and_resolves_and_an_unconsumed_queue_alerts(
    broker: str,
    worker_env: dict[str, str],
    worker_database: Database,
    spool_dir: Path,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    queue = f"health-runs-{uuid.uuid4().hex[:8]}"
    orphan = f"{queue}-orphan"
    conf = {
        "notifier_health_interval": 0.5,
        "notifier_health_watch_every": 0.5,  # the hung-run check is the watcher's
        "notifier_run_limit_floor": 1.5,
        "notifier_health_queues": [orphan],
    }
    env = {
        **worker_env,
        "NOTIFIER_TEST_BROKER": broker,
        "NOTIFIER_TEST_DATABASE": worker_database.url,
        "NOTIFIER_TEST_QUEUE": queue,
        "NOTIFIER_TEST_CONF": json.dumps(conf),
        "NOTIFIER_HEALTH_WATCH_EVERY": "0.5",  # a prefork worker's watcher (its drainer)
    }
    client = make_app(broker, worker_database.url, spool_dir, task_default_queue=queue)
    with worker_database.session_scope() as db:  # what workers before this one observed
        record_durations(db, {"t.sleep": [0.6] * 20})
    try:
        start_workers(env)
        result = client.tasks["t.sleep"].delay(7, 4)
        fingerprint = f"run:overdue:{result.id}"
        alert = wait_for(lambda: _alert(worker_database, fingerprint), timeout=20)
        assert alert.title == "Task t.sleep is running past its limit"
        # The new worker's limit is 3 x the stored p99 (above the floor of 1.5 s).
        assert alert.alert_metadata["limit_source"] == "p99"
        assert alert.alert_metadata["limit_seconds"] == 1.8
        assert "store_id': 7" in (alert.description or "")
        assert alert.alert_metadata["task_name"] == "t.sleep"
        assert alert.alert_metadata["arguments"] == {"store_id": 7, "seconds": 4}
        assert alert.alert_metadata["hostname"].startswith("w")
        assert not alert.is_resolved

        assert result.get(timeout=30) == "slept"
        resolved = wait_for(
            lambda: (a := _alert(worker_database, fingerprint)) is not None and a.is_resolved and a,
            timeout=20,
        )
        # Either path that sees the run end (the watcher, or the worker's success) records it.
        assert (resolved.resolution_notes or "").lower().startswith("resolved automatically")
        assert resolved.alert_metadata["resolved_by_run"]["task_id"] == result.id
        assert resolved.occurrence_count == 1

        def stored_durations() -> int:  # the worker added this run's to the shared ones
            with worker_database.session_scope() as db:
                row = db.get(TaskDurations, "t.sleep")
                return row.samples if row is not None else 0

        wait_for(lambda: stored_durations() == 21, timeout=20)

        client.tasks["t.noop"].apply_async(queue=orphan)
        stuck = wait_for(lambda: _alert(worker_database, f"queue:no-consumer:{orphan}"), timeout=20)
        assert (stuck.alert_type.value, stuck.severity.value) == ("capacity", "critical")
        assert stuck.title == f"Queue {orphan} has no consumer"
        assert stuck.alert_metadata["depth"] == 1
        assert f"Queue {orphan} holds 1 message(s)" in (stuck.description or "")
        # The queue the worker consumes, busy a moment ago, raised nothing.
        assert _alert(worker_database, f"queue:no-consumer:{queue}") is None
    finally:
        _purge(client, orphan)
        client.close()


# -- the limit of a run, decided in the worker's main process (fast, no worker) ---------------


def _app(**conf: object) -> Celery:
    app = Celery("health-limits", set_as_current=False)
    app.conf.update(conf)
    worker_test_tasks.define_tasks(app)
    return app


def _request(task_name: str, started: float, **fields: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "id": f"id-{task_name}-{started}",
        "task_name": task_name,
        "time_start": started,
        "time_limits": (None, None),
        "args": [],
        "kwargs": {"store_id": 3, "api_key": "s3cret", "options": {"token": "x", "page": 2}},
        "hostname": "w1@box",
        "worker_pid": 99,
        **fields,
    }
    return SimpleNamespace(**values)


def test_a_run_past_the_floor_is_reported_with_its_arguments_redacted() -> None:
    watch = RunWatch.for_app(_app(notifier_run_limit_floor=60))
    now = 10_000.0
    [run] = watch.scan([_request("t.secret", now - 61), _request("t.sleep", now - 59)], now)
    assert (run.task_name, run.limit_seconds, run.limit_source) == ("t.secret", 60, "floor")
    assert run.arguments == {
        "store_id": 3,
        "api_key": "[redacted]",
        "options": {"token": "[redacted]", "page": 2},
    }
    assert (run.hostname, run.pid) == ("w1@box", 99)
    # Undecorated tasks are left alone unless the app was installed with all_tasks=True.
    assert watch.scan([_request("t.plain", now - 3600, kwargs={})], now) == []
    everything = RunWatch.for_app(_app(notifier_run_limit_floor=60), all_tasks=True)
    assert len(everything.scan([_request("t.plain", now - 3600, kwargs={})], now)) == 1


def test_the_hard_time_limit_comes_first_then_the_override_then_the_p99() -> None:
    app = _app(notifier_run_limit_floor=60, notifier_run_limits={"t.sleep": 30})
    watch = RunWatch.for_app(app)
    task = app.tasks["t.sleep"]
    assert watch.limit(task, _request("t.sleep", 1, time_limits=(20, 10))) == (20, "time_limit")
    assert watch.limit(task, _request("t.sleep", 1)) == (30, "override")
    # Runs seen finishing build the p99: 3 x 40 s is above the floor.
    for n in range(30):
        started = 1000.0 + n * 100
        watch.scan([_request("t.secret", started, id=f"r{n}")], started + 40)
        watch.scan([], started + 40)
    assert watch.p99("t.secret") == 40
    assert watch.limit(app.tasks["t.secret"], _request("t.secret", 1)) == (120, "p99")
    assert watch.limit(app.tasks["t.boom"], _request("t.boom", 1)) == (60, "floor")


def test_a_restarted_worker_uses_the_durations_its_predecessor_stored(
    database: Database,
) -> None:
    app = _app(notifier_run_limit_floor=60)
    before = RunWatch.for_app(app)
    for n in range(30):
        started = 1000.0 + n * 100
        before.scan([_request("t.secret", started, id=f"r{n}")], started + 40)
        before.scan([], started + 40)
    before.scan([_request("t.plain", 9000.0)], 9000.0)
    before.scan([], 9100.0)  # an undecorated task: no limit uses its durations
    with database.session_scope() as db:
        before.share(db, [])
        assert shared_p99s(db, ["t.secret", "t.plain"]) == {"t.secret": 40.0}

    after = RunWatch.for_app(app)  # a new worker process: it has seen nothing itself
    running = _request("t.secret", 20_000.0)
    assert after.limit(app.tasks["t.secret"], running) == (60, "floor")
    with database.session_scope() as db:  # its first heartbeat reads the shared p99
        after.share(db, [running])
    assert after.limit(app.tasks["t.secret"], running) == (120, "p99")
