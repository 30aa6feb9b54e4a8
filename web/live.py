"""The live hub: one watcher per web process fans database changes out to every open stream.

Each process runs at most one watcher thread, and only while a stream is open:

- on PostgreSQL it LISTENs on its own connection; the triggers of ``notifier.changes`` send
  ids on commit, so the watcher reads exactly the rows that changed;
- elsewhere, with ``NOTIFIER_LIVE_REDIS_URL`` set, it SUBSCRIBEs on that Redis: every
  process's commits publish a change notice there (``notifier.pubsub``), and the watcher
  reads what changed after its position;
- otherwise (SQLite, one host, writes serialised by the file lock) it reads the ends of
  three indexes every ``NOTIFIER_LIVE_POLL_SECONDS`` and, when they moved, what changed.

Either way the database is read once per change per process, never once per client; every
stream gets the same :class:`Batch` through its own bounded queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from notifier import (
    CHANGES_CHANNEL,
    CappedCount,
    Database,
    Position,
    admin_notification_service,
    alert_change,
    alerts_by_id,
    alerts_changed_after,
    current_position,
    notifications_after,
    notifications_by_id,
)
from notifier.keyset import UNREAD_CAP, capped_count_query
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
    """One open stream's inbox; ``None`` in it means "fell behind, reconnect"."""

    inbox: queue.Queue[Batch | None] = field(default_factory=lambda: queue.Queue(QUEUE_BATCHES))

    def offer(self, batch: Batch) -> bool:
        """Queue ``batch``; False (and a closing ``None``) when the reader fell behind."""
        try:
            self.inbox.put_nowait(batch)
            return True
        except queue.Full:
            try:
                self.inbox.get_nowait()
                self.inbox.put_nowait(None)
            except (queue.Empty, queue.Full):
                pass
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

    @property
    def open_streams(self) -> int:
        """How many streams this process holds now."""
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        """A new inbox; starts the watcher when it is the first. Raises TooManyStreams."""
        with self._lock:
            if len(self._subscribers) >= self.max_streams:
                raise TooManyStreams(f"this process holds its {self.max_streams} streams")
            subscriber = Subscriber()
            self._subscribers.add(subscriber)
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
