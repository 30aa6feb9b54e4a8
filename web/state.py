"""The bottom of the web package: its URL prefixes and the per-app state, read per request.

Every other web module may import this one; it imports nothing of web, so the package's
import graph has no circle (state -> auth/api/pages -> extension -> app).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from notifier import Database, configured_timezone

if TYPE_CHECKING:  # only for the annotation: the throttles are built by the extension
    from .throttle import FailureThrottle

#: Where the JSON API lives by default (``NOTIFIER_API_PREFIX``); every response is JSON.
API_PREFIX = "/api/v1/admin/notifications"
#: The pages, the login and the static files, by default (``NOTIFIER_URL_PREFIX``).
ADMIN_PREFIX = "/admin"
#: The standalone layout; a host sets NOTIFIER_BASE_TEMPLATE to its own base template.
BASE_TEMPLATE = "notifier/base.html"
#: The key of ``app.extensions`` under which the extension keeps itself.
EXTENSION_KEY = "notifier"
#: Requests that change nothing (a GET's one best-effort write, a token's last use, may fail).
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppState:
    """What the notifier keeps for one app: its database and its throttles."""

    database: Database
    login_throttle: FailureThrottle  # per client address and email
    login_ip_throttle: FailureThrottle  # per client address, across emails
    auth_throttle: FailureThrottle  # bad bearer tokens, per client address
    #: The host's login (a ``host_login.HostLogin``: who the admin is, where to sign in);
    #: None: the built-in form. Typed loosely so this bottom module imports nothing of web.
    host_login: Any = None
    #: The host's session (Flask-SQLAlchemy's ``db.session``); None: our own per request.
    host_session: Callable[[], Session] | None = None
    #: The process's live hub (a ``live.Hub``), fanning changes out to open streams.
    hub: Any = None


class StateHolder(Protocol):
    """What ``app.extensions["notifier"]`` offers: the state it keeps for each app."""

    def state(self, app: Flask) -> AppState:
        """The per-app state created by ``init_app``."""
        ...


def state_of(app: Flask) -> AppState:
    """The notifier's state for ``app``; RuntimeError when the notifier is not registered."""
    holder = app.extensions.get(EXTENSION_KEY)
    if holder is None:
        raise RuntimeError("NotifierWeb.init_app(app) was not called for this app")
    return cast(StateHolder, holder).state(app)


def app_state() -> AppState:
    """The notifier's state for the current app."""
    return state_of(current_app._get_current_object())  # type: ignore[attr-defined]


def app_timezone() -> ZoneInfo:
    """The zone in which this app counts "today" (``NOTIFIER_TIMEZONE`` in its config)."""
    return configured_timezone({"NOTIFIER_TIMEZONE": current_app.config["NOTIFIER_TIMEZONE"]})


def db_session() -> Session:
    """The request's session, opened on first use; ``commit()`` it in the view that writes.

    Services never commit; a write view commits once, after its service calls succeed, and
    the session is rolled back and closed when the request ends.
    """
    session: Session | None = g.get("_notifier_session")
    if session is None:
        state = app_state()
        if state.host_session is not None:
            # The host's session: its request owns the transaction, and Flask-SQLAlchemy
            # removes it at teardown; a notification written here commits with host work.
            return state.host_session()
        # A request that may write begins its transactions IMMEDIATE (SQLite): it reads
        # (who is asking, what exists) before it writes, and begun deferred that write
        # fails when a worker or a dispatcher committed in between. Reads stay deferred,
        # so they never wait for a writer.
        session = state.database.session(immediate=request.method not in _READ_METHODS)
        g._notifier_session = session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back and close the request's session, if one was opened (app-context teardown)."""
    session: Session | None = g.pop("_notifier_session", None)
    if session is not None:
        session.rollback()
        session.close()
