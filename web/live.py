"""The live hub: one watcher per web process fans database changes out to every open stream.

Each process runs at most one watcher thread, and only while a stream is open:

- on PostgreSQL it LISTENs on its own connection; the triggers of ``notifier.live.changes`` send
  ids on commit, so the watcher reads exactly the rows that changed;
- elsewhere, with ``NOTIFIER_LIVE_REDIS_URL`` set, it SUBSCRIBEs on that Redis: every
  process's commits publish a change notice there (``notifier.live.pubsub``), and the watcher
  reads what changed after its position;
- otherwise (SQLite, one host, writes serialised by the file lock) it reads the ends of
  three indexes every ``NOTIFIER_LIVE_POLL_SECONDS`` and, when they moved, what changed.

Either way the database is read once per change per process, never once per client; every
stream gets the same :class:`Batch` through its own bounded queue.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from notifier import (
    UNREAD_CAP,
    CappedCount,
    Database,
    admin_notification_service,
    capped_count_query,
)
from notifier.live import (
    CHANGES_CHANNEL,
    Position,
    alert_change,
    alerts_by_id,
    alerts_changed_after,
    current_position,
    notifications_after,
    notifications_by_id,
)
from notifier.models import AdminNotification, PlatformAlert

log = logging.getLogger(__name__)

#: A stream whose client reads slower than this many batches behind is closed; the browser
#: reconnects with its Last-Event-ID and replays from the database.
QUEUE_BATCHES = 256
#: Notices that arrive within this window are read together (a storm is one query).
GATHER_SECONDS = 0.05


class TooManyStreams(Exception):
    """This process holds its maximum of open streams."""


@dataclass
class Batch:
    """What changed, read once for every stream: new notifications, changed alerts, the count."""

    notifications: list[AdminNotification]
    alerts: list[PlatformAlert]
    unread_count: CappedCount
    position: Position


@dataclass(eq=False)
class Subscriber:
    """One open stream's inbox; ``None`` in it means "end the stream".

    One open stream's inbox; ``None`` in it means "end the stream" (the reader fell
    behind, its client left, or the server stops): the client reconnects and replays.
    """

    inbox: queue.Queue[Batch | None] = field(default_factory=lambda: queue.Queue(QUEUE_BATCHES))

    def offer(self, batch: Batch) -> bool:
        """Queue ``batch``; False (and the stream ended) when the reader fell behind."""
        try:
            self.inbox.put_nowait(batch)
            return True
        except queue.Full:
            self.end()
            return False

    def end(self) -> None:
        """Make the stream end after what it already holds (a batch may go: it is replayed)."""
        while True:
            try:
                self.inbox.put_nowait(None)
                return
            except queue.Full:
                with suppress(queue.Empty):
                    self.inbox.get_nowait()


class HangUps:
    """Notices at once when the client of a stream closes its connection.

    One thread watches every stream of a process (an idle stream would otherwise find out
    only when its next heartbeat fails to send, holding its slot till then).
    """

    def __init__(self, on_hangup: Callable[[Subscriber], None]) -> None:
        self._on_hangup = on_hangup
        self._lock = threading.Lock()
        # Made by the thread's first watch and closed when it stops: never one inherited
        # across a fork (an epoll set shared with another process would mix their sockets).
        self._selector: selectors.BaseSelector | None = None
        self._watched: dict[Subscriber, socket.socket] = {}

    def watch(self, subscriber: Subscriber, connection: socket.socket) -> None:
        """Call back with ``subscriber`` once the peer of ``connection`` has closed it."""
        with self._lock:
            running = self._selector is not None
            selector = self._selector or selectors.DefaultSelector()
            try:
                selector.register(connection, selectors.EVENT_READ, subscriber)
            except (KeyError, ValueError, OSError):
                if not running:
                    selector.close()
                return  # not a socket we can watch: the heartbeat finds the client gone
            self._watched[subscriber] = connection
            if not running:
                self._selector = selector
                thread = threading.Thread(
                    target=self._run, args=(selector,), name="notifier-hangups", daemon=True
                )
                thread.start()

    def forget(self, subscriber: Subscriber) -> None:
        """Stop watching (before the server closes the connection and reuses its number)."""
        with self._lock:
            connection = self._watched.pop(subscriber, None)
            if connection is not None and self._selector is not None:
                self._selector.unregister(connection)

    def _run(self, selector: selectors.BaseSelector) -> None:
        while True:
            with self._lock:
                if not self._watched:
                    self._selector = None
                    selector.close()
                    return
            for key, _ in selector.select(timeout=1.0):
                subscriber, connection = key.data, cast(socket.socket, key.fileobj)
                hung_up = _hung_up(connection)
                if hung_up is not None:
                    self.forget(subscriber)  # readable once is enough to know
                    if hung_up:
                        self._on_hangup(subscriber)


def _hung_up(connection: socket.socket) -> bool | None:
    """Whether the client closed ``connection``; None for a false alarm, False if unknown.

    A client sends nothing after its request, so a readable socket means closed. None for
    a false alarm; False when it cannot be told (bytes arrived, TLS, or the stream just
    ended): then its next heartbeat finds out, as before.
    """
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return None
    except ConnectionError:  # reset by the client
        return True
    except (OSError, ValueError):  # an SSLSocket takes no flags; a closed one raises
        return False


class Hub:
    """The per-process fan-out of database changes to open streams."""

    def __init__(
        self,
        database: Database,
        *,
        max_streams: int,
        poll_seconds: float,
        redis_url: str | None = None,
    ) -> None:
        self.database = database
        self.max_streams = max_streams
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._position = Position()
        self._unread: CappedCount | None = None
        self._alert_states: dict[int, tuple[int, int, bool]] = {}
        self._caught_up = False
        self.postgres = database.engine.dialect.name == "postgresql"
        #: Where change notices come from: LISTEN on PostgreSQL (its triggers see every
        #: writer, SQL included), else Redis when configured, else reading the database.
        self.source = "postgresql" if self.postgres else "redis" if redis_url else "poll"
        self.redis_url = redis_url
        self._hangups = HangUps(self._hang_up)
        self._stopping = False
        _HUBS.add(self)

    @property
    def open_streams(self) -> int:
        """How many streams this process holds now."""
        return len(self._subscribers)

    def subscribe(self, connection: socket.socket | None = None) -> Subscriber:
        """A new inbox; starts the watcher when it is the first. Raises TooManyStreams.

        With the client's ``connection``, the stream ends (and frees its slot) as soon as
        the client closes it.
        """
        with self._lock:
            if self._stopping:
                raise TooManyStreams("this process is stopping")
            if len(self._subscribers) >= self.max_streams:
                raise TooManyStreams(f"this process holds its {self.max_streams} streams")
            subscriber = Subscriber()
            self._subscribers.add(subscriber)
            if connection is not None:
                self._hangups.watch(subscriber, connection)
            if self._thread is None or not self._thread.is_alive():
                self._ready.clear()
                self._thread = threading.Thread(target=self._run, name="notifier-live", daemon=True)
                self._thread.start()
        # A change committed after subscribe() returns reaches this inbox: wait until the
        # watcher listens (bounded: a slow database only delays live updates, never a request).
        self._ready.wait(timeout=5)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget an inbox; the watcher stops by itself once none is left."""
        with self._lock:
            self._subscribers.discard(subscriber)
        self._hangups.forget(subscriber)

    def _hang_up(self, subscriber: Subscriber) -> None:
        # Its slot is free from now on; the stream's thread wakes up and ends.
        self.unsubscribe(subscriber)
        subscriber.end()

    def stop(self) -> None:
        """End every open stream now and open no more (the process is stopping)."""
        with self._lock:
            self._stopping = True
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.end()

    def _active(self) -> bool:
        with self._lock:
            if not self._subscribers:
                self._thread = None
                return False
            return True

    def _run(self) -> None:
        backoff = 0.5
        self._caught_up = False  # no position of this run's yet: the first source sets it
        while self._active():
            try:
                if self.source == "postgresql":
                    self._listen()
                elif self.source == "redis":
                    self._subscribe()
                else:
                    self._poll()
            except Exception:
                # The database (or Redis) went away: say so, wait, start again (and re-read
                # the state, so a change made meanwhile is still sent).
                log.warning("live updates: lost the %s; retrying", self.source, exc_info=True)
                self._ready.set()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # -- sources ---------------------------------------------------------------------------

    def _baseline(self) -> tuple[int, int, Any, Any]:
        with self.database.sessionmaker() as db:
            self._position = current_position(db)
            self._unread = admin_notification_service.get_unread_count(db)
            return self._fingerprint(db)

    def _fingerprint(self, db: Any) -> tuple[int, int, Any, Any]:
        row = db.execute(
            select(
                select(func.max(AdminNotification.id)).scalar_subquery(),
                capped_count_query(
                    AdminNotification, [AdminNotification.is_read.is_(False)], UNREAD_CAP
                ).scalar_subquery(),
                select(func.max(PlatformAlert.last_occurred_at)).scalar_subquery(),
                select(func.max(PlatformAlert.resolved_at)).scalar_subquery(),
            )
        ).one()
        return (int(row[0] or 0), int(row[1] or 0), row[2], row[3])

    def _poll(self) -> None:
        last = self._baseline()
        self._ready.set()
        while self._active():
            time.sleep(self.poll_seconds)
            with self.database.sessionmaker() as db:
                now = self._fingerprint(db)
                if now != last:
                    last = now
                    self._publish(db, notified=None, alerts=None)

    def _listen(self) -> None:
        import psycopg  # only on PostgreSQL, where the driver is installed

        url = make_url(self.database.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANGES_CHANNEL}")
            self._baseline()  # after LISTEN: a change from here on is noticed
            self._ready.set()
            while self._active():
                notices = list(conn.notifies(timeout=1.0, stop_after=1))
                if not notices:
                    continue
                # what arrives with it is read in the same query (a storm is one read)
                notices += conn.notifies(timeout=GATHER_SECONDS)
                notified: set[int] = set()
                alerts: set[int] = set()
                for notice in notices:
                    kind, ident = notice.payload[:1], notice.payload[1:]
                    if kind == "n" and ident.isdigit():
                        notified.add(int(ident))
                    elif kind == "a" and ident.isdigit():
                        alerts.add(int(ident))
                with self.database.sessionmaker() as db:
                    self._publish(db, notified=notified, alerts=alerts)

    def _subscribe(self) -> None:
        import redis  # a dependency; imported here like psycopg, where it is used

        client = redis.Redis.from_url(
            self.redis_url or "",
            socket_connect_timeout=5,
            socket_timeout=5,
            health_check_interval=15,  # a silent Redis is found out within seconds
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(CHANGES_CHANNEL)
            # Redis confirms the subscription in order: from here on a notice reaches us.
            while (message := pubsub.get_message(timeout=5.0)) is None or (
                message["type"] != "subscribe"
            ):
                if message is None:
                    raise ConnectionError("Redis did not confirm the subscription")
            if self._caught_up:
                # A reconnect: notices sent while we were away are lost; read what moved
                # since our position (nothing a stream already has is sent again).
                with self.database.sessionmaker() as db:
                    self._publish(db, notified=None, alerts=None)
            else:
                self._baseline()
                self._caught_up = True
            self._ready.set()
            while self._active():
                message = pubsub.get_message(timeout=1.0)
                if message is None or message["type"] != "message":
                    continue
                # what arrives with it is read in the same query (a storm is one read)
                deadline = time.monotonic() + GATHER_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    pubsub.get_message(timeout=left)
                with self.database.sessionmaker() as db:
                    self._publish(db, notified=None, alerts=None)
        finally:
            pubsub.close()
            client.close()

    # -- fan-out ---------------------------------------------------------------------------

    def _publish(self, db: Any, *, notified: set[int] | None, alerts: set[int] | None) -> None:
        """Read what changed (once) and hand it to every stream."""
        if notified is None:
            new = notifications_after(db, self._position.notification_id)
        else:
            new = notifications_by_id(db, notified)
        if alerts is None:
            changed = alerts_changed_after(db, self._position.alert_change)
        else:
            changed = alerts_by_id(db, alerts)
        changed = [alert for alert in changed if self._alert_is_news(alert)]
        unread = admin_notification_service.get_unread_count(db)
        # Past the cap the count stays "1,000+" whatever is read, yet each admin's own
        # (filtered) count may have dropped: then every notice is passed on.
        if not new and not changed and unread == self._unread and unread.exact:
            return
        self._unread = unread
        position = self._position
        for notification in new:
            position = position.merge(Position(notification.id, 0))
        for alert in changed:
            position = position.merge(Position(0, alert_change(alert)))
        self._position = position
        batch = Batch(new, changed, unread, position)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            if not subscriber.offer(batch):
                self.unsubscribe(subscriber)

    def _alert_is_news(self, alert: PlatformAlert) -> bool:
        state = (alert_change(alert), alert.occurrence_count, alert.is_resolved)
        if self._alert_states.get(alert.id) == state:
            return False
        if len(self._alert_states) > 10_000:
            self._alert_states.clear()
        self._alert_states[alert.id] = state
        return True


#: Every hub of this process (one per app), for :func:`end_streams`; weak, so an app that
#: is dropped takes its hub with it.
_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()


def end_streams() -> None:
    """End every open stream of this process at once; for a server that is stopping.

    An open stream never finishes by itself, so a graceful stop would otherwise wait its
    whole timeout and then cut them; ended, they close cleanly and each client reconnects
    (to another process, or this one restarted) with its ``Last-Event-ID``.
    """
    for hub in list(_HUBS):
        hub.stop()


def replay(database: Database, since: Position | None) -> tuple[Batch, Position]:
    """What a client that last saw ``since`` missed (nothing before it when None)."""
    with database.sessionmaker() as db:
        now = current_position(db)
        unread = admin_notification_service.get_unread_count(db)
        if since is None:
            return Batch([], [], unread, now), now
        new = notifications_after(db, since.notification_id)
        changed = alerts_changed_after(db, since.alert_change)
        return Batch(new, changed, unread, now.merge(since)), now


def sse(event: str, data: str, event_id: str | None = None) -> str:
    """One Server-Sent Event (``data`` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def drain(subscriber: Subscriber, *, heartbeat: float, until: float) -> Iterator[Batch | None]:
    """Batches as they come; ``None`` every ``heartbeat`` seconds of quiet; stops at ``until``.

    Ends early when the reader fell behind (the client reconnects and replays).
    """
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return
        try:
            batch = subscriber.inbox.get(timeout=min(heartbeat, left))
        except queue.Empty:
            yield None
            continue
        if batch is None:
            return
        yield batch
