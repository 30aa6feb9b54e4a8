"""Live push over Redis pub/sub: SQLite shared by several processes, Redis carrying the news.

Real SQLite file, real Redis (this run's db), real writer processes (a script on the core,
the Celery worker's drainer process), and the app's own stream read as a client reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from notifier.worker.spool import Spool
from notifier.worker.spool.drainer import DrainerProcess
from sqlalchemy import event

from notifier import Database, FailureKind, FailureReport, JobKind, admin_notification_service
from tests.web.conftest import API, make_admin, make_token
from tests.web.test_stream import Stream

ROOT = Path(__file__).resolve().parents[2]

# Another process writing through the core, as a host's script or the CLI does.
WRITER = """
from notifier import Database, Settings, admin_notification_service
database = Database.from_settings(Settings.from_env())
with database.session_scope() as db:
    note = admin_notification_service.notify_critical_error(
        db, error_type="Disk", error_message="disk full on db-2"
    )
print(note.id, flush=True)
database.dispose()
"""


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Only SQLite: on PostgreSQL the streams learn of changes through LISTEN."""
    return sqlite_url


@pytest.fixture
def app(database: Database, redis_url: str) -> Iterator[Flask]:
    """A web process whose hub listens on Redis (its database watcher would poll hourly)."""
    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "NOTIFIER_DATABASE_URL": database.url,
            "NOTIFIER_LIVE_REDIS_URL": redis_url,
            "NOTIFIER_LIVE_POLL_SECONDS": 3600,
            "NOTIFIER_STREAM_HEARTBEAT_SECONDS": 0.2,
        }
    )
    yield application
    application.extensions["notifier"].state(application).database.dispose()


@pytest.fixture
def api(app: Flask, database: Database) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = (
        f"Bearer {make_token(database, make_admin(database))}"
    )
    return client


class StatementLog:
    """Every SQL statement the web process runs, counted as it runs."""

    def __init__(self, app: Flask) -> None:
        self.engine = app.extensions["notifier"].state(app).database.engine
        self.statements: list[str] = []
        self._lock = threading.Lock()
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        with self._lock:
            self.statements.append(statement)

    def count(self) -> int:
        with self._lock:
            return len(self.statements)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def _env(database: Database, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NOTIFIER_DATABASE_URL": database.url,
        "NOTIFIER_LIVE_REDIS_URL": redis_url,
        "NOTIFIER_INSTANCE_PATH": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }


def test_a_notification_from_another_process_reaches_every_stream_without_polling(
    app: Flask, api: FlaskClient, database: Database, redis_url: str, tmp_path: Path
) -> None:
    hub = app.extensions["notifier"].state(app).hub
    assert hub.source == "redis"
    stream = Stream(api)
    # Five more streams' inboxes (a test client cannot interleave two responses' contexts).
    others = [hub.subscribe() for _ in range(5)]
    log = StatementLog(app)
    try:
        assert stream.next_event().data == {"unread_count": 0, "unread_count_exact": True}
        # Quiet: three open streams, heartbeats flowing, and no query at all.
        before = log.count()
        heartbeats = stream.heartbeats
        while stream.heartbeats < heartbeats + 3:
            with pytest.raises(AssertionError):
                stream.next_event(timeout=0.3)
        assert log.count() == before

        writer = subprocess.run(
            [sys.executable, "-c", WRITER],
            env=_env(database, redis_url, tmp_path),
            capture_output=True,
            timeout=60,
            check=True,
        )
        created = int(writer.stdout.split()[0])
        events = stream.until("unread", timeout=10)
        assert [e.event for e in events] == ["notification", "unread"]
        assert events[0].data["id"] == created
        assert events[0].data["title"] == "Critical error: Disk"
        assert events[1].data == {"unread_count": 1, "unread_count_exact": True}
        for inbox in others:
            batch = inbox.inbox.get(timeout=10)
            assert batch is not None
            assert [n.id for n in batch.notifications] == [created]
            assert batch.unread_count == 1 and batch.unread_count.exact
        # The news was read from the database once for the process, not once per stream (six
        # here). Under load the notices of one commit may arrive apart and be read twice.
        read = "SELECT notifier_admin_notifications."
        reads = [s for s in log.statements[before:] if s.startswith(read)]
        assert 1 <= len(reads) <= 2, reads
    finally:
        log.close()
        for inbox in others:
            hub.unsubscribe(inbox)
        stream.close()


def test_the_worker_drainer_process_publishes_what_it_records(
    app: Flask, api: FlaskClient, database: Database, redis_url: str, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    drainer = DrainerProcess(spool, database.url, timedelta(minutes=15), redis_url)
    stream = Stream(api)
    try:
        assert stream.next_event().data == {"unread_count": 0, "unread_count_exact": True}
        drainer.start()
        spool.put(
            FailureReport(
                key="celery:task-1:failure",
                job=JobKind.IMPORT,
                kind=FailureKind.EXCEPTION,
                task_name="shop.import_products",
                task_id="task-1",
                exception_class="ValueError",
                message="bad CSV header",
                store_id=7,
                store_name="Acme",
            )
        )
        events = stream.until("unread", timeout=30)
        notes = [e.data for e in events if e.event == "notification"]
        assert len(notes) == 1 and notes[0]["store_id"] == 7
        assert events[-1].data == {"unread_count": 1, "unread_count_exact": True}
    finally:
        stream.close()
        drainer.stop()


def test_writes_in_the_web_process_reach_its_own_streams_through_redis(
    api: FlaskClient, database: Database
) -> None:
    with database.session_scope() as db:
        note = admin_notification_service.notify_critical_error(
            db, error_type="X", error_message="y"
        )
    stream = Stream(api)
    try:
        assert stream.next_event().data == {"unread_count": 1, "unread_count_exact": True}
        assert api.put(f"{API}/{note.id}/read").status_code == 200
        assert stream.until("unread", timeout=10)[-1].data == {
            "unread_count": 0,
            "unread_count_exact": True,
        }
    finally:
        stream.close()


def test_a_change_made_while_redis_was_cut_off_is_sent_after_the_reconnect(
    app: Flask, api: FlaskClient, database: Database, redis_url: str
) -> None:
    stream = Stream(api)
    server = redis.Redis.from_url(redis_url)
    try:
        assert stream.next_event().data == {"unread_count": 0, "unread_count_exact": True}
        # Written with no notice at all (this Database does not publish), as if its notice
        # had been sent while the watcher was cut off: only its catch-up can find it.
        with database.session_scope() as db:
            note = admin_notification_service.notify_critical_error(
                db, error_type="Cut", error_message="while away"
            )
        # Cut this run's subscriber off (only ours: the pub/sub clients on this test db).
        ours = [
            c["id"] for c in server.client_list(_type="pubsub") if c["db"] == str(server_db(server))
        ]
        assert ours
        for client_id in ours:
            server.client_kill_filter(_id=client_id)
        events = stream.until("unread", timeout=15)
        assert [e.data["id"] for e in events if e.event == "notification"] == [note.id]
        assert events[-1].data == {"unread_count": 1, "unread_count_exact": True}
    finally:
        server.close()
        stream.close()


def server_db(client: redis.Redis) -> int:
    """The db number ``client`` selected."""
    return int(client.connection_pool.connection_kwargs.get("db", 0))
