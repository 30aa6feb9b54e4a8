"""The broker as this worker sees it: a probe connection with short timeouts, and a streak.

The health loop's queue probe doubles as the broker probe: every interval it opens a
channel on a connection of its own (never the consumer's, which it does not disturb) and
asks for each watched queue's depth. A probe fails when the transport raises one of its
connection errors (refused, reset, timed out); connecting and each socket read or write
are bounded by ``min(interval, 5 s)`` (at least 1 s), so a broker that swallows packets
costs one tick that long, and a failed connection is never retried within the tick.
After ``notifier_broker_unreachable_after`` failed probes in a row (default 2) the worker
reports the broker unreachable (``notifier.health.broker_unreachable``, written straight
to the database, which may well be up); every tick whose probe succeeds reports it
reachable, which resolves the alert once no live worker is left cut off.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.orm import Session

from notifier import utcnow
from notifier.health import broker_reachable, broker_unreachable

from .inhibition import broker_tag
from .runs import positive

__all__ = ["DEFAULT_UNREACHABLE_AFTER", "BrokerWatch"]

logger = logging.getLogger("notifier.worker")

#: Failed probes in a row before the broker counts as unreachable.
DEFAULT_UNREACHABLE_AFTER = 2
#: The transport options that bound a probe connection's socket reads and writes.
_SOCKET_TIMEOUTS = {
    "redis": ("socket_timeout", "socket_connect_timeout"),
    "amqp": ("read_timeout", "write_timeout"),
}


class BrokerWatch:
    """One worker's view of its broker: probe connections, and the failed probes in a row."""

    def __init__(self, app: Any, interval: float) -> None:
        conf = app.conf
        self.tag = broker_tag(app)
        self.url = str(maybe_sanitize_url(str(conf.get("broker_url") or "")))
        after = positive(conf.get("notifier_broker_unreachable_after"))
        self.after = max(1, int(after)) if after else DEFAULT_UNREACHABLE_AFTER
        self.timeout = min(5.0, max(1.0, interval))
        self.failures = 0
        self.since: datetime | None = None
        self.error = ""
        self._errors: tuple[type[BaseException], ...] = (OperationalError, OSError)

    def connect(self, app: Any) -> Any:
        """A connected probe connection with short timeouts (raises if the broker is away)."""
        connection = app.connection_for_read(connect_timeout=self.timeout)
        self._errors = (OperationalError, OSError, *connection.connection_errors)
        for option in _SOCKET_TIMEOUTS.get(connection.transport.driver_type, ()):
            connection.transport_options[option] = self.timeout
        try:
            connection.ensure_connection(max_retries=0)  # once: no sleeping retries here
        except BaseException:
            connection.release()
            raise
        return connection

    def unreachable(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised by a probe) says the broker cannot be reached."""
        return isinstance(exc, self._errors)

    def failed(self, exc: BaseException) -> None:
        """Count one failed probe."""
        if self.failures == 0:
            self.since = utcnow()
        self.failures += 1
        self.error = f"{type(exc).__name__}: {exc}"[:300]
        if self.failures == self.after:
            logger.warning("notifier: the broker %s is unreachable: %s", self.url, self.error)

    def reached(self) -> None:
        """A probe succeeded: the streak is over."""
        if self.failures >= self.after:
            logger.info("notifier: the broker %s is reachable again", self.url)
        self.failures, self.since, self.error = 0, None, ""

    def report(self, db: Session, hostname: str) -> None:
        """Tell the store what this worker sees of the broker (in the heartbeat's transaction)."""
        if self.failures == 0:
            broker_reachable(db, tag=self.tag, hostname=hostname)
        elif self.failures >= self.after and self.since is not None:
            broker_unreachable(
                db,
                tag=self.tag,
                url=self.url,
                hostname=hostname,
                since=self.since,
                error=self.error,
            )
