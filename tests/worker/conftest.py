"""Worker fixtures: a Celery app on real Redis with the notifier installed, an in-process
worker, subprocess prefork workers, and a TCP proxy that can cut the database off."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import notifier.worker.jobs  # noqa: F401  (registers the bundled jobs on every app)
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult
from notifier.worker import install, uninstall
from notifier.worker.spool import Spool
from sqlalchemy import func
from sqlalchemy import select as sql_select

from notifier import Database, FailureKind, FailureReport, JobKind
from notifier.models import AdminNotification, PlatformAlert

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import worker_test_tasks  # noqa: E402

from tests.conftest import REDIS_URL, TcpProxy, proxied, require_service  # noqa: E402, F401


@pytest.fixture
def worker_database(pg_database: Database) -> Database:
    """The notifier store the worker records into (PostgreSQL, emptied per test)."""
    return pg_database


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def make_app(broker: str, database_url: str, spool: Path, **conf: Any) -> Celery:
    app = Celery(
        f"test-{uuid.uuid4().hex[:6]}", broker=broker, backend=REDIS_URL, set_as_current=False
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        notifier_database_url=database_url,
        notifier_spool_dir=str(spool),
        **conf,
    )
    worker_test_tasks.define_tasks(app)
    return app


@pytest.fixture
def celery_config() -> dict[str, Any]:
    """Extra app config for a test; override in a test module or with indirect params."""
    return {}


@pytest.fixture
def celery_app(
    redis_url: str, worker_database: Database, spool_dir: Path, celery_config: dict[str, Any]
) -> Iterator[Celery]:
    """A Celery app on Redis with every test task and the notifier installed."""
    app = make_app(redis_url, worker_database.url, spool_dir, **celery_config)
    install(app, all_tasks=bool(celery_config.get("notifier_test_all_tasks")))
    yield app
    uninstall(app)
    app.close()


@pytest.fixture
def celery_worker(celery_app: Celery) -> Iterator[Any]:
    """An in-process worker (solo pool, in a thread) consuming from the app's broker."""
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=20) as w:
        yield w


def wait_for(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def notifications(database: Database) -> list[AdminNotification]:
    with database.session_scope() as db:
        return list(db.scalars(sql_select(AdminNotification).order_by(AdminNotification.id)))


def alerts(database: Database) -> list[PlatformAlert]:
    with database.session_scope() as db:
        return list(db.scalars(sql_select(PlatformAlert).order_by(PlatformAlert.id)))


def family_count(database: Database, fingerprint: str) -> int:
    """Occurrences counted for ``fingerprint`` and its per-store alerts (``...:store=<id>``)."""
    return sum(
        a.occurrence_count
        for a in alerts(database)
        if a.fingerprint == fingerprint or a.fingerprint.startswith(f"{fingerprint}:store=")
    )


def recorded_task_ids(database: Database) -> list[str]:
    """The ids of the tasks the notifier recorded a notification for, sorted."""
    return sorted(n.notification_metadata["task_id"] for n in notifications(database))


def notification_count(database: Database) -> int:
    with database.session_scope() as db:
        return int(db.scalar(sql_select(func.count()).select_from(AdminNotification)) or 0)


def numbered_report(n: int) -> FailureReport:
    """The report of the ``n``-th failure of one import (key ``celery:task-<n>:failure``)."""
    return FailureReport(
        key=f"celery:task-{n}:failure",
        job=JobKind.IMPORT,
        kind=FailureKind.EXCEPTION,
        task_name="shop.import",
        task_id=f"task-{n}",
        store_id=7,
        exception_class="ValueError",
        fingerprint="celery:shop.import:ValueError:store=7",
        message="boom",
    )


def spool_pending(spool: Path) -> int:
    """How many reports wait in the spool folder ``spool`` (``notifier spool status``'s count)."""
    return Spool(spool).stats()[0] if spool.is_dir() else 0


def settle(database: Database, spool: Path, quiet: float = 0.6, timeout: float = 30) -> None:
    """Wait until the spool is empty and nothing new has been recorded for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = (-1, -1)
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        pending = spool_pending(spool)
        with database.session_scope() as db:
            now = (
                int(db.scalar(sql_select(func.count()).select_from(AdminNotification)) or 0),
                int(
                    db.scalar(
                        sql_select(func.coalesce(func.sum(PlatformAlert.occurrence_count), 0))
                    )
                    or 0
                ),
            )
        if now != last or pending:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return
        time.sleep(0.1)
    raise AssertionError("the notifier did not settle")


# -- subprocess workers ------------------------------------------------------------------


class WorkerProcess:
    """A real ``celery worker`` (prefork) in a subprocess, on the test task module."""

    def __init__(
        self, env: dict[str, str], log: Path, concurrency: int = 2, *, wait: bool = True
    ) -> None:
        self.log = log
        self.handle = log.open("ab")
        self._terminated = False
        cmd = [
            sys.executable, "-m", "celery", "-A", "worker_test_tasks", "worker",
            "-P", "prefork", "-c", str(concurrency), "-l", "INFO",
            "-n", f"w{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=str(HERE), stdout=self.handle, stderr=subprocess.STDOUT
        )
        if wait:
            self.ready()

    def ready(self) -> None:
        """Wait until the worker says it is ready (``wait=False`` starts several at once)."""
        log = self.log
        wait_for(lambda: b"ready." in log.read_bytes() or self.proc.poll() is not None, 60)
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{log.read_text()[-3000:]}")

    def terminate(self) -> None:
        """Ask for a warm shutdown without waiting (``stop`` waits)."""
        if self.proc.poll() is None and not self._terminated:
            self._terminated = True
            self.proc.terminate()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.terminate()  # warm shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.handle.close()


@pytest.fixture
def worker_env(redis_url: str, worker_database: Database, spool_dir: Path) -> dict[str, str]:
    """Environment for subprocess workers and the matching client app."""
    root = str(HERE.parents[1])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), root, os.environ.get("PYTHONPATH", "")]),
        "NOTIFIER_TEST_BROKER": redis_url,
        "NOTIFIER_TEST_BACKEND": REDIS_URL,
        "NOTIFIER_TEST_DATABASE": worker_database.url,
        "NOTIFIER_TEST_SPOOL": str(spool_dir),
    }


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start subprocess workers; every one still running is stopped after the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], concurrency: int = 2, *, wait: bool = True) -> WorkerProcess:
        log = tmp_path / f"worker{len(started)}.log"
        worker = WorkerProcess(env, log, concurrency, wait=wait)
        started.append(worker)
        return worker

    yield start
    for process in started:  # every one shuts down at once, then each is waited for
        process.terminate()
    for process in started:
        process.stop()


@pytest.fixture
def client_app(
    worker_env: dict[str, str], worker_database: Database, spool_dir: Path
) -> Iterator[Celery]:
    """A client app (no plugin) to send tasks to subprocess workers and read their results."""
    app = make_app(worker_env["NOTIFIER_TEST_BROKER"], worker_database.url, spool_dir)
    yield app
    app.close()


def finished(results: list[AsyncResult], timeout: float = 60) -> list[AsyncResult]:
    """Wait for every result, failures included, and return them."""
    for result in results:
        result.get(timeout=timeout, propagate=False)
    return results


def fail(app: Celery, stores: Iterable[int], timeout: float = 60) -> list[AsyncResult]:
    """Run ``t.boom`` once per store and wait until each has failed."""
    results = finished([app.tasks["t.boom"].delay(n) for n in stores], timeout)
    assert {r.state for r in results} == {"FAILURE"}
    return results


@dataclass
class Prefork:
    """Subprocess prefork workers, the client app that feeds them and the store they record to."""

    env: dict[str, str]
    start: Callable[..., WorkerProcess]
    client: Celery
    database: Database
    spool: Path

    def settle(self, **kwargs: float) -> None:
        """Wait until the workers' spool is empty and their recording has stopped."""
        settle(self.database, self.spool, **kwargs)


@pytest.fixture
def prefork(
    worker_env: dict[str, str],
    start_workers: Callable[..., WorkerProcess],
    client_app: Celery,
    worker_database: Database,
    spool_dir: Path,
) -> Prefork:
    return Prefork(worker_env, start_workers, client_app, worker_database, spool_dir)
