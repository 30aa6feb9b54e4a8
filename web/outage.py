"""A database that cannot be reached: 503 with Retry-After, JSON for the API, a page for people."""

from __future__ import annotations

from flask import render_template
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

#: What SQLAlchemy raises when the database is down, unreachable or out of connections
#: (OperationalError also covers a locked SQLite file). Other errors stay 500s: they are bugs.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeoutError)
#: Seconds a client should wait before trying again; the bell retries with its own backoff.
RETRY_AFTER_SECONDS = 5


def unavailable_page(_exc: Exception) -> tuple[str, int, dict[str, str]]:
    """The friendly page shown instead of a 500 while the database is out of reach."""
    page = render_template("notifier/unavailable.html", retry_after=RETRY_AFTER_SECONDS)
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
