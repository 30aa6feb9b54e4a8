"""Root causes as the worker sees them: its database unreachable, and the failures it explains.

A task failure whose exception (or one it was raised from) is a connection error of a
database driver is a symptom of ``database:<tag>``, the worker's own database: a host's
tasks and the notifier usually share it, and the worker cannot tell one URL from another
in a driver's exception. A connection error of the broker's client is a symptom of
``broker:<tag>`` (:func:`broker_tag`, the same tag the health loop's broker root cause
carries). The drainer opens the root cause "database unreachable" when it records
again after failing to reach the database (in the transaction of its first batch, so the
failures of the outage are held back by it) and resolves it once the spool is empty.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from notifier import AlertType, Severity, must_wait, platform_alert_service, utcnow
from notifier.health import broker_scope

__all__ = ["DatabaseOutage", "broker_tag", "connection_scopes", "url_tag"]

logger = logging.getLogger("notifier.worker")

#: Driver packages whose connection errors mean "the database is unreachable".
_DATABASE_PACKAGES = frozenset(
    ("psycopg", "psycopg2", "psycopg_pool", "asyncpg", "pymysql", "MySQLdb", "sqlite3")
)
_DATABASE_ERRORS = frozenset(("OperationalError", "InterfaceError"))
#: Broker clients' connection errors.
_BROKER_PACKAGES = frozenset(("kombu", "amqp", "redis"))
_BROKER_ERRORS = frozenset(("OperationalError", "ConnectionError", "RecoverableConnectionError"))
#: SQLite's OperationalError is also "no such table": only these mean the file is away.
_SQLITE_AWAY = ("unable to open database", "disk i/o error", "readonly database")


def _kind(exc: BaseException) -> str | None:
    """``"database"``, ``"broker"`` or None for one exception (not its causes)."""
    for cls in type(exc).__mro__:
        package = cls.__module__.partition(".")[0]
        if package in _DATABASE_PACKAGES and cls.__name__ in _DATABASE_ERRORS:
            if package == "sqlite3" and not any(s in str(exc).lower() for s in _SQLITE_AWAY):
                return None
            return "database"
        if package in _BROKER_PACKAGES and cls.__name__ in _BROKER_ERRORS:
            return "broker"
    return None


def connection_scopes(exc: BaseException, database_tag: str, broker_tag: str) -> list[str]:
    """The root-cause scopes a task's exception is a symptom of (usually none).

    Follows ``__cause__`` and ``__context__`` a few steps (SQLAlchemy wraps the driver's
    error; a task may wrap it in its own).
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return []
        kind = _kind(seen)
        if kind == "database":
            return [f"database:{database_tag}"]
        if kind == "broker":
            return [broker_scope(broker_tag)]
        seen = seen.__cause__ or seen.__context__
    return []


def url_tag(url: str) -> str:
    """A short stable tag of a URL without its credentials (the broker's)."""
    shown = url.rpartition("@")[2] if "@" in url else url
    return hashlib.sha256(shown.encode()).hexdigest()[:12]


def broker_tag(app: Any) -> str:
    """The tag of ``app``'s broker (its ``broker_url``), for scopes and the root cause."""
    return url_tag(str(app.conf.get("broker_url") or ""))


class DatabaseOutage:
    """What the drainer saw of its database: since when it could not reach it, and the alert."""

    def __init__(self, database_tag: str) -> None:
        self.scope = f"database:{database_tag}"
        self.since: datetime | None = None
        self.alert_id: int | None = None

    def failed(self, exc: BaseException) -> None:
        """Note a failure to record: the outage begins unless it is not a reachability one."""
        if self.since is None and must_wait(exc):
            self.since = utcnow()

    def open(self, db: Session) -> None:
        """Open the root cause in ``db`` (before the batch) if the database was away."""
        if self.since is None or self.alert_id is not None:
            return
        since = self.since.isoformat(timespec="seconds").replace("+00:00", "Z")
        alert, _ = platform_alert_service.create_or_increment_alert(
            db,
            alert_type=AlertType.DATABASE,
            severity=Severity.CRITICAL,
            title="Database unreachable from the worker",
            fingerprint=f"notifier:database-unreachable:{self.scope}",
            description=(
                f"The worker could not reach its database from {since}; the failures of "
                "that time were kept in its spool and are recorded now. Failures whose "
                "exception is a connection error to it are held back by this alert."
            ),
            affected_systems=["database"],
            metadata={"unreachable_since": since},
            explains=self.scope,
        )
        self.alert_id = alert.id

    def over(self, db: Session) -> None:
        """Resolve the root cause (the spool is drained): its summary goes out."""
        if self.alert_id is None:
            self.since = None
            return
        reached = utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            platform_alert_service.resolve_alert(
                db,
                self.alert_id,
                user_id=None,
                resolution_notes=f"Resolved automatically: the worker reached it at {reached}.",
            )
        except Exception:  # resolved by an admin meanwhile: nothing left to do
            logger.debug("notifier: database outage alert %s already resolved", self.alert_id)
        self.since = None
        self.alert_id = None
