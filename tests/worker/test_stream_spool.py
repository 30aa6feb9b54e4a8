"""The Redis stream spool: what a killed worker left is recorded by another one, once."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from celery import Celery
from notifier.worker.spool import Drainer
from notifier.worker.spool.choice import database_tag
from notifier.worker.spool.drainer import SpoolRecorder
from notifier.worker.spool.stream import GROUP, StreamSpool
from prometheus_client import REGISTRY

from notifier import Database, FailureKind, FailureReport, JobKind, upgrade
from notifier.types import utcnow

from .conftest import (
    REDIS_URL,
    Prefork,
    WorkerProcess,
    alerts,
    fail,
    family_count,
    notifications,
    proxied,
    recorded_task_ids,
    settle,
    wait_for,
)

STREAM = "notifier:spool"


def _report(task_id: str) -> FailureReport:
    return FailureReport(
        key=f"celery:{task_id}:failure",
        job=JobKind.IMPORT,
        kind=FailureKind.EXCEPTION,
        task_name="shop.import",
        task_id=task_id,
        store_id=7,
        exception_class="ValueError",
        fingerprint="celery:shop.import:ValueError",
        occurred_at=utcnow(),
        message="boom",
    )


def _gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name, {}) or 0.0


def test_entries_a_dead_drainer_recorded_but_never_acknowledged_count_once(
    redis_url: str, worker_database: Database
) -> None:
    """A drainer that committed a batch and died before XACK: the next one replays it.

    With the cooldown on, a replay could only show as a higher alert count.
    """
    first = StreamSpool(redis_url, claim_idle=0.2)
    for n in range(30):
        first.put(_report(f"t{n}"))
    recorder = SpoolRecorder(worker_database.url, timedelta(minutes=15))
    try:
        claims = first.claim(20)
        assert len(claims) == 20
        assert recorder.record([c.event for c in claims if c.event is not None]) == [True] * 20
        # ... and the process dies here, before acknowledging.
        second = StreamSpool(redis_url, claim_idle=0.2)
        drainer = Drainer(second, recorder)
        handled = 0

        def drained() -> bool:
            nonlocal handled
            handled += drainer.drain()
            return second.stats()[0] == 0

        wait_for(drained, timeout=10)
        assert handled == 30  # the 10 new entries, and the dead one's 20 once idle
        assert first.claim(20) == []
    finally:
        recorder.close()
    assert len(notifications(worker_database)) == 1
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 30


def test_stream_spool_metrics_dead_letters_and_cli(
    redis_url: str, worker_database: Database, tmp_path: Path
) -> None:
    spool = StreamSpool(redis_url)
    spool.put(_report("a"))
    spool.put(_report("b"))
    redis.Redis.from_url(redis_url).xadd(STREAM, {"report": b"{not json"})
    recorder = SpoolRecorder(worker_database.url, timedelta(0))
    try:
        drainer = Drainer(spool, recorder)
        drainer.report()
        assert _gauge("notifier_spool_pending_events") == 3
        assert drainer.drain() == 3
        drainer._reported = 0.0  # the next report would wait a second
        drainer.report()
        assert _gauge("notifier_spool_pending_events") == 0
        assert _gauge("notifier_spool_dead_events") == 1
        assert _gauge("notifier_drainer_lag_seconds") == 0
    finally:
        recorder.close()
    assert len(notifications(worker_database)) == 2
    [dead_alert] = [a for a in alerts(worker_database) if "dead-letter" in a.fingerprint]
    assert f"{STREAM}:dead" in dead_alert.description

    (tmp_path / "worker.py").write_text(
        "from celery import Celery\napp = Celery('shop')\n"
        f"app.conf.notifier_spool_url = {redis_url!r}\n"
    )
    notifier = str(Path(sys.executable).with_name("notifier"))

    def cli(*args: str) -> str:
        run = subprocess.run(
            [notifier, "spool", *args, "-A", "worker:app"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "NOTIFIER_INSTANCE_PATH": str(tmp_path / "instance")},
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    status = cli("status")
    assert f"Spool: Redis stream {STREAM} at {redis_url}" in status
    assert "Pending: 0 event(s)" in status and "Dead: 1 event(s)" in status
    assert "Moved 1 dead event(s) back" in cli("retry")
    assert "Pending: 1 event(s)" in cli("status")


def _kill_tree(worker: WorkerProcess) -> None:
    """SIGKILL a worker, its pool and its drainer at once, as a replaced pod goes."""
    main = psutil.Process(worker.proc.pid)
    family = [main, *main.children(recursive=True)]
    for process in family:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=10)


@pytest.mark.slow
def test_a_killed_workers_spooled_events_are_recorded_by_another_worker(
    prefork: Prefork, redis_url: str, tmp_path: Path
) -> None:
    stream = redis.Redis.from_url(redis_url)
    database = prefork.database
    with proxied(database.url) as (proxy, url):
        env = {
            **prefork.env,
            "NOTIFIER_TEST_DATABASE": url,
            "NOTIFIER_TEST_SPOOL_URL": redis_url,
            "NOTIFIER_TEST_CLAIM_IDLE": "1",
            "NOTIFIER_TEST_COOLDOWN": "0",
        }
        group = f"{GROUP}:{database_tag(url)}"  # the workers' database's drainers
        first = prefork.start(env)
        results = fail(prefork.client, [0])
        wait_for(lambda: notifications(database), timeout=30)  # its drainer is ready
        proxy.cut()
        results += fail(prefork.client, range(1, 21))
        # Every event is in the stream (or, when the drainer's pooled connection outlived the
        # cut by a moment, recorded), and the first worker's drainer has taken some (how many
        # depends on where its backoff stands) and cannot record them: those only a claim by
        # another consumer can bring back.
        wait_for(lambda: stream.xlen(STREAM) + len(recorded_task_ids(database)) == 21, timeout=30)
        wait_for(lambda: stream.xpending(STREAM, group)["pending"] > 0, timeout=30)
        _kill_tree(first)
        proxy.restore()
        prefork.start(env)
        wait_for(lambda: stream.xlen(STREAM) == 0, timeout=60)
        settle(database, tmp_path / "no-folder-spool")
    assert recorded_task_ids(database) == sorted(r.id for r in results)
    assert family_count(database, "celery:t.boom:ValueError") == 21
    assert stream.xpending(STREAM, group)["pending"] == 0


@pytest.mark.parametrize("celery_config", [{"notifier_spool_url": REDIS_URL}])
def test_a_solo_worker_spools_to_the_stream(
    celery_app: Celery, celery_worker: Any, worker_database: Database, redis_url: str
) -> None:
    fail(celery_app, [1] * 5, timeout=30)
    wait_for(lambda: alerts(worker_database) and alerts(worker_database)[0].occurrence_count == 5)
    assert redis.Redis.from_url(redis_url).xlen(STREAM) == 0
    assert len(notifications(worker_database)) == 1


_NOWHERE = {"notifier_spool_url": "redis://127.0.0.1:9/0", "notifier_notification_cooldown": 0}


@pytest.mark.parametrize("celery_config", [_NOWHERE])
def test_failures_go_straight_to_the_database_while_redis_is_unreachable(
    celery_app: Celery, celery_worker: Any, worker_database: Database, tmp_path: Path
) -> None:
    results = fail(celery_app, range(5), timeout=30)
    settle(worker_database, tmp_path / "no-folder-spool")
    assert recorded_task_ids(worker_database) == sorted(r.id for r in results)
    alerted = alerts(worker_database)
    [spool_alert] = [a for a in alerted if a.fingerprint.startswith("notifier:spool:")]
    assert "Redis stream notifier:spool at redis://127.0.0.1:9/0" in spool_alert.description


def test_drainers_of_two_databases_sharing_a_stream_each_record_their_own(
    redis_url: str, worker_database: Database, tmp_path: Path
) -> None:
    """Each database's drainers leave the other's entries in the stream, for their owner."""
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other = Database(other_url)
    spools = {
        url: StreamSpool(redis_url, owner=database_tag(url))
        for url in (worker_database.url, other_url)
    }
    ours, theirs = spools.values()
    for n in range(3):
        ours.put(_report(f"ours-{n}"))
        theirs.put(_report(f"theirs-{n}"))
    recorders = [SpoolRecorder(url, timedelta(0)) for url in spools]
    try:
        Drainer(ours, recorders[0]).drain()
        assert recorded_task_ids(worker_database) == ["ours-0", "ours-1", "ours-2"]
        assert redis.Redis.from_url(redis_url).xlen(STREAM) == 3  # left for their drainers
        Drainer(theirs, recorders[1]).drain()
        assert recorded_task_ids(other) == ["theirs-0", "theirs-1", "theirs-2"]
        assert redis.Redis.from_url(redis_url).xlen(STREAM) == 0
        assert recorded_task_ids(worker_database) == ["ours-0", "ours-1", "ours-2"]
    finally:
        for recorder in recorders:
            recorder.close()
        for spool in spools.values():
            spool.close()
        other.dispose()
