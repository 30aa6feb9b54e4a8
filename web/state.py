"""The bottom of the web package: its URL prefixes and the per-app state, read per request.

Every other web module may import this one; it imports nothing of web, so the package's
import graph has no circle (state -> auth/api/pages -> extension -> app).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from notifier.config import configured_timezone
from notifier.db import Database

if TYPE_CHECKING:  # only for the annotation: the throttles are built by the extension
    from .throttle import FailureThrottle

#: Where the JSON API lives; every response under it is JSON, errors included.
API_PREFIX = "/api/v1/admin/notifications"
#: The pages, the login and the static files live under this prefix.
ADMIN_PREFIX = "/admin"
#: The key of ``app.extensions`` under which the extension keeps itself.
EXTENSION_KEY = "notifier"


@dataclass
class AppState:
    """What the notifier keeps for one app: its database and its throttles."""

    database: Database
    login_throttle: FailureThrottle  # per client address and email
    login_ip_throttle: FailureThrottle  # per client address, across emails
    auth_throttle: FailureThrottle  # bad bearer tokens, per client address


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
        session = app_state().database.sessionmaker()
        g._notifier_session = session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back and close the request's session, if one was opened (app-context teardown)."""
    session: Session | None = g.pop("_notifier_session", None)
    if session is not None:
        session.rollback()
        session.close()
