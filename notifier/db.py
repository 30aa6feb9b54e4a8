"""Engines and sessions: fork-safe, pinged before use, with bounded waits.

Services never commit; whoever opens the session owns the transaction, e.g.::

    with database.session_scope() as db:
        admin_notification_service.notify_critical_error(db, error_type="X", error_message="y")
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings, validate_database_url, validate_live_redis_url
from .live.pubsub import ChangePublisher

#: Seconds to wait for a connection to open, a lock, or a statement, before giving up.
CONNECT_TIMEOUT = 5
#: A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 2.0
STATEMENT_TIMEOUT_MS = 15_000
SQLITE_BUSY_TIMEOUT = 15
#: Seconds after which a PostgreSQL connection whose peer went silent fails. Without it,
#: a connection whose packets are dropped (a NAT or firewall that forgot the flow) blocks
#: its thread for the kernel's default of about two hours; with it the query raises, the
#: pool discards the connection and the next checkout opens a fresh one.
NETWORK_TIMEOUT = 30


def _network_timeouts(seconds: float) -> dict[str, int]:
    """Libpq settings that make a silent peer fail a connection within ``seconds``.

    ``tcp_user_timeout`` bounds how long sent data may stay unacknowledged (a query into
    a black hole); keepalive probes find a dead peer while the client only waits for an
    answer (idle, then ``count`` probes ``interval`` apart: ``seconds`` in all).
    """
    idle = max(1, round(seconds / 3))
    count = 4
    interval = max(1, round((seconds - idle) / count))
    return {
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": count,
        "tcp_user_timeout": max(1000, round(seconds * 1000)),
    }


def make_engine(url: str, *, network_timeout: float = NETWORK_TIMEOUT, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the notifier's safety settings.

    - a ping before use of any pooled connection that sat idle for more than
      ``PING_AFTER_IDLE_SECONDS``: a connection dropped by the server (restart, idle
      timeout, failover) is replaced, not used. A connection returned less than that ago
      is handed out without a round trip; ``pool_pre_ping`` pinged every checkout, which
      cost a third of a single-row write (BENCHMARKS.md). Should the server go away
      inside that window, the first statement fails, SQLAlchemy recognises the
      disconnect and refreshes the whole pool;
    - PostgreSQL: a connect timeout and a statement timeout, so an unreachable or stuck
      database cannot hang a worker; TCP keepalives and ``tcp_user_timeout``, so a
      connection whose packets vanish fails within ``network_timeout`` seconds (libpq
      parameters given in the URL's query string win over these defaults);
    - SQLite: WAL journal, a busy timeout, foreign keys, and transactions that begin with
      a real ``BEGIN`` (pysqlite's own handling defers it), so a web process and a worker
      can share one file;
    - fork safety: after ``os.fork()`` the child drops the parent's pooled connections
      without closing them (they still belong to the parent), as SQLAlchemy documents.
    """
    validate_database_url(url)
    parsed = make_url(url)
    options: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "postgresql":
        network = {
            key: value
            for key, value in _network_timeouts(network_timeout).items()
            if key not in parsed.query
        }
        options["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
            f"-c lock_timeout={STATEMENT_TIMEOUT_MS}",
            **network,
        }
        options["pool_timeout"] = CONNECT_TIMEOUT
    else:
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
    options.update(kwargs)
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    _ping_when_idle(engine)
    _dispose_after_fork(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, as SQLAlchemy documents it, for idle connections."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["notifier_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["notifier_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("notifier_returned_at")
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc
        if not alive:  # the pool retries with a new connection, up to three times
            raise DisconnectionError("pooled connection did not answer a ping")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once ("database is
        # locked") if another connection committed in between; IMMEDIATE waits instead.
        # Asked for per transaction (session_scope(immediate=True)) or per session, by
        # binding it to the engine copy that carries the option (Database.session).
        immediate = connection.get_execution_options().get("notifier_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _dispose_after_fork(engine: Engine) -> None:
    ref = weakref.ref(engine)

    def _in_child() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=_in_child)


class Database:
    """An engine and its session factory for one database URL.

    ``live_redis_url``: on SQLite, publish a change notice on that Redis after each commit
    that wrote notifications or alerts, so live streams in other processes see it
    (``notifier.live.pubsub``). PostgreSQL needs none: its triggers notify on commit.
    """

    def __init__(
        self, url: str, *, live_redis_url: str | None = None, **engine_kwargs: Any
    ) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = self.engine.execution_options(notifier_immediate=True)
        self._owns_engine = True
        self._publisher = _publisher(self.engine, live_redis_url)

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs: Any) -> Database:
        """The Database that ``settings`` (the ``NOTIFIER_*`` variables) describe."""
        return cls(settings.database_url, live_redis_url=settings.live_redis_url, **engine_kwargs)

    @classmethod
    def for_engine(cls, engine: Engine, *, live_redis_url: str | None = None) -> Database:
        """A Database over an engine its owner made and disposes (e.g.

        a host's Flask-SQLAlchemy engine); :meth:`dispose` leaves that engine alone.
        """
        database = cls.__new__(cls)
        database.url = engine.url.render_as_string(hide_password=False)
        database.engine = engine
        database.sessionmaker = sessionmaker(engine, expire_on_commit=False)
        database._writer = engine.execution_options(notifier_immediate=True)
        database._owns_engine = False
        database._publisher = _publisher(engine, live_redis_url)
        return database

    @property
    def publishes_changes(self) -> bool:
        """Whether commits here publish change notices on Redis (``live_redis_url``)."""
        return self._publisher is not None

    def session(self, *, immediate: bool = False) -> Session:
        """A new session of :attr:`sessionmaker`; close it when done.

        ``immediate``: every transaction it begins takes SQLite's write lock at BEGIN
        (waiting up to the busy timeout for it), for a unit of work that reads and then
        writes, such as a web request that changes something: begun deferred, its first
        write fails at once ("database is locked") whenever another process committed
        since its first read. No effect on PostgreSQL.
        """
        return self.sessionmaker(bind=self._writer) if immediate else self.sessionmaker()

    @contextmanager
    def session_scope(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back if it raises.

        ``immediate`` is for transactions that read rows and then change them while other
        processes may do the same: on SQLite it takes the write lock at BEGIN (waiting for
        it), so the change cannot fail for having read an older snapshot.
        """
        with self.sessionmaker() as session, session.begin():
            if immediate:
                session.connection(execution_options={"notifier_immediate": True})
            yield session

    def dispose(self) -> None:
        """Close every pooled connection (of an engine this Database created)."""
        if self._publisher is not None:
            if not self._owns_engine:
                self._publisher.detach(self.engine)
            self._publisher.close()
        if self._owns_engine:
            self.engine.dispose()


def _publisher(engine: Engine, live_redis_url: str | None) -> ChangePublisher | None:
    if not live_redis_url or engine.dialect.name == "postgresql":
        return None
    validate_live_redis_url(live_redis_url)
    publisher = ChangePublisher(live_redis_url)
    publisher.attach(engine)
    return publisher
