"""Change notices over Redis pub/sub: live push across processes where LISTEN is not there.

On SQLite, web processes, the Celery worker's drainer and the CLI all write one file, and
nothing in SQLite tells another process that a row changed. With ``NOTIFIER_LIVE_REDIS_URL``
set, every :class:`~notifier.db.Database` publishes one message on :data:`CHANNEL` after
each commit that wrote notifications or alerts; each web process's live hub subscribes once
and reads what changed from the database by position (``notifier.live.changes``), for all of
its streams.

Writes are seen at the engine, not in the ORM: a statement that writes
``notifier_admin_notifications`` or ``notifier_platform_alerts`` marks its connection; the
connection's commit turns the mark into a message, sent when the connection goes back to
the pool, i.e. after the commit; a rollback drops it. So ORM flushes, Core statements, the race-safe
upserts and a host's own session on the same engine are all seen.

The message names the kinds of change (``n`` new notifications, ``u`` notifications updated
or deleted, ``a`` alerts), not row ids: the subscriber reads by position anyway, and a
Core statement has no ids to give without another query.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .changes import CHANNEL

log = logging.getLogger(__name__)

#: Seconds a publish may wait for Redis: a commit has already happened, a live update may
#: be late, but a writer (the worker's drainer) must not hang on a Redis that went away.
PUBLISH_TIMEOUT = 1.0
#: After a failed publish, messages are not attempted for this long (logged once).
QUIET_AFTER_FAILURE = 5.0

_WRITE = re.compile(
    r'\s*(insert\s+into|update|delete\s+from)\s+"?(notifier_admin_notifications|notifier_platform_alerts)\b',
    re.IGNORECASE,
)
_WRITTEN = "notifier_live_written"  # kinds written in the connection's open transaction
_COMMITTED = "notifier_live_committed"  # kinds committed, sent when it is checked in


def write_kind(statement: str) -> str | None:
    """``n``, ``u`` or ``a`` when ``statement`` writes notifications or alerts, else None."""
    match = _WRITE.match(statement)
    if match is None:
        return None
    if match.group(2).lower() == "notifier_platform_alerts":
        return "a"
    return "n" if match.group(1).lower().startswith("insert") else "u"


class ChangePublisher:
    """Publishes a change notice on Redis after every commit that wrote to the feed's tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._quiet_until = 0.0

    def attach(self, engine: Engine) -> None:
        """Watch ``engine``'s writes and commits (see the module's docstring)."""
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committing)
        event.listen(engine, "rollback", self._rolled_back)
        event.listen(engine, "checkin", self._checked_in)

    def detach(self, engine: Engine) -> None:
        """Stop watching ``engine`` (a host's engine outlives the notifier's use of it)."""
        for name, listener in (
            ("after_cursor_execute", self._executed),
            ("commit", self._committing),
            ("rollback", self._rolled_back),
            ("checkin", self._checked_in),
        ):
            if event.contains(engine, name, listener):
                event.remove(engine, name, listener)

    def publish(self, kinds: set[str]) -> None:
        """Send one notice naming ``kinds``; a Redis that fails is logged, never raised."""
        if time.monotonic() < self._quiet_until:
            return
        try:
            self._redis().publish(CHANNEL, " ".join(sorted(kinds)))
        except redis.RedisError as exc:
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE
            log.warning(
                "live updates: could not publish a change notice on Redis (%s); open streams "
                "in other processes see it when they reconnect",
                type(exc).__name__,
            )

    def close(self) -> None:
        """Close the Redis connections."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                # redis-py's pool notices a fork and opens new connections in the child.
                self._client = redis.Redis.from_url(
                    self.url,
                    socket_connect_timeout=PUBLISH_TIMEOUT,
                    socket_timeout=PUBLISH_TIMEOUT,
                )
            return self._client

    # -- engine events -----------------------------------------------------------------------

    def _executed(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        kind = write_kind(statement)
        if kind is not None:
            conn.info.setdefault(_WRITTEN, set()).add(kind)

    def _committing(self, conn: Connection) -> None:
        written = conn.info.pop(_WRITTEN, None)
        if written:
            conn.info.setdefault(_COMMITTED, set()).update(written)

    def _rolled_back(self, conn: Connection) -> None:
        conn.info.pop(_WRITTEN, None)

    def _checked_in(self, _dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_WRITTEN, None)  # never committed: the pool rolls it back
        committed = record.info.pop(_COMMITTED, None)
        if committed:
            self.publish(committed)


__all__ = ["PUBLISH_TIMEOUT", "ChangePublisher", "write_kind"]
