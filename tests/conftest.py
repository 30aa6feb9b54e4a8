"""Shared fixtures: real databases (SQLite and PostgreSQL), each test starting empty.

Services: under CI=true a test whose service is down fails; elsewhere it is skipped with
the reason, so a laptop without PostgreSQL can still run the SQLite half.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from notifier.db import Database
from notifier.migrate import upgrade
from notifier.models import Base
from tests.receivers import MailSink, Receiver, serve_receiver, serve_smtp

POSTGRES_ADMIN_URL = os.environ.get(
    "NOTIFIER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _redis_url_for_this_process() -> str:
    """``NOTIFIER_TEST_REDIS_URL`` (db 15 by default); under pytest-xdist (``make test``
    runs two), worker gwN takes the db N below it, since every test flushes its db."""
    url = make_url(os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url.render_as_string(hide_password=False)
    db = int(url.database or 0) - int(worker[2:])
    if db < 0:
        raise RuntimeError(f"NOTIFIER_TEST_REDIS_URL leaves no Redis db for xdist worker {worker}")
    return url.set(database=str(db)).render_as_string(hide_password=False)


REDIS_URL = _redis_url_for_this_process()
RABBITMQ_URL = os.environ.get("NOTIFIER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def require_service(name: str, url: str) -> None:
    """Skip (or under CI=true, fail) unless the server behind ``url`` accepts TCP connections."""
    parts = urlsplit(url.replace("+psycopg", ""))
    host, port = parts.hostname or "127.0.0.1", parts.port
    assert port is not None, url
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc}); start it (see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """This run's Redis db (``NOTIFIER_TEST_REDIS_URL``), flushed before and after the test."""
    require_service("Redis", REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the block, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_ADMIN_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped afterwards."""
    with scratch_postgres("notifier_test") as url:
        upgrade(url)
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema at all), dropped after the test."""
    with scratch_postgres("notifier_empty") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for this test run."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'notifier.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(request.getfixturevalue("sqlite_url"))


def _empty_tables(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A Database on an empty schema; emptied again afterwards."""
    db = Database(database_url)
    _empty_tables(db)
    yield db
    _empty_tables(db)
    db.dispose()


@pytest.fixture
def db_session(database: Database) -> Iterator[Session]:
    """A session whose uncommitted work is rolled back at the end of the test."""
    with database.sessionmaker() as session:
        yield session
        session.rollback()


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[Database]:
    """An empty PostgreSQL database, for tests that only make sense there."""
    db = Database(postgres_url)
    _empty_tables(db)
    yield db
    _empty_tables(db)
    db.dispose()


# -- a TCP proxy the test can cut or strand ------------------------------------------------

# A classic BPF socket filter that drops every packet (BPF_RET|BPF_K 0). Attached to a TCP
# socket it discards segments before TCP sees them, so nothing is acknowledged: to the
# peer the flow has vanished, as when a NAT or firewall forgets it. Linux only.
_SO_ATTACH_FILTER = 26
_DROP_ALL = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))
_DROP_ALL_PROGRAM = struct.pack("HL", 1, ctypes.addressof(_DROP_ALL))


class TcpProxy:
    """Forwards a local port to a server; ``cut()`` refuses and drops connections,
    ``strand()`` makes every open connection a black hole (packets dropped, never
    acknowledged, nothing closed) while new connections are forwarded as usual."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for conn in self._conns:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def strand(self) -> None:
        """Drop every packet of the open connections, both ways, without closing them."""
        with self._lock:
            stranded, self._conns = self._conns, []
        for conn in stranded:
            with suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _DROP_ALL_PROGRAM)
        self._stranded = [*getattr(self, "_stranded", []), *stranded]  # closed by nothing

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                # Accepted just before a cut() and connected upstream just after it: without
                # this check the connection would outlive the cut, and a test expecting "the
                # database is unreachable" would see a client record through it.
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):  # ValueError: cut() closed a socket under select()
            return
        finally:
            a.close()
            b.close()


@contextmanager
def proxied(url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TcpProxy in front of the database of ``url``, and the URL that goes through it."""
    parsed = make_url(url)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    try:
        yield (
            proxy,
            parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )
    finally:
        proxy.cut()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP receiver that answers from a script (then 204) and keeps requests."""
    yield from serve_receiver()


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, MailSink]]:
    """A real SMTP server (aiosmtpd) on loopback: its smtp:// URL and what it received."""
    yield from serve_smtp()
