"""A database out of reach or not set up: 503, JSON for the API, a page for people."""

from __future__ import annotations

from flask import current_app, render_template, request
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from notifier import schema_missing

#: What SQLAlchemy raises when the database is down, unreachable or out of connections
#: (OperationalError also covers a locked SQLite file). Other errors stay 500s: they are bugs.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeoutError)
#: What a missing table raises besides: ProgrammingError on PostgreSQL (OperationalError on
#: SQLite). Only those :func:`notifier.schema_missing` recognises get the schema's 503.
DATABASE_ERRORS = (*DATABASE_DOWN, ProgrammingError)
#: Seconds a client should wait before trying again; the bell retries with its own backoff.
RETRY_AFTER_SECONDS = 5
#: The command that creates the tables; the API's message and the page both name it.
INIT_COMMAND = "notifier init-db"
SCHEMA_MISSING = (
    f"the notifier's tables are missing or out of date in its database; run `{INIT_COMMAND}` "
    "against that database (e.g. with --database-url), then retry"
)


def log_schema_missing(exc: Exception) -> None:
    """One warning line naming the command to run (the worker logs the same advice)."""
    current_app.logger.warning("%s in %s %s: %s", SCHEMA_MISSING, request.method, request.path, exc)


def unavailable_page(exc: Exception) -> tuple[str, int, dict[str, str]]:
    """The friendly page shown instead of a 500 while the database cannot serve.

    That is, the database is out of reach or has no notifier schema yet; any other
    database error is raised again (a bug: a 500).
    """
    if schema_missing(exc):
        log_schema_missing(exc)
        return render_template("notifier/schema_missing.html", command=INIT_COMMAND), 503, {}
    if not isinstance(exc, DATABASE_DOWN):
        raise exc
    page = render_template("notifier/unavailable.html", retry_after=RETRY_AFTER_SECONDS)
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
