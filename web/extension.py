"""NotifierWeb: the Flask extension that mounts the admin API and login on any Flask app."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, g, request
from sqlalchemy.orm import Session

from notifier.config import Settings, configured_timezone
from notifier.db import Database

from .throttle import FailureThrottle, throttle_storage

#: Where the JSON API lives; every response under it is JSON, errors included.
API_PREFIX = "/api/v1/admin/notifications"
#: The pages and the login live under this prefix (issue 5 adds /admin/notifications).
ADMIN_PREFIX = "/admin"

_DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@dataclass
class _AppState:
    database: Database
    login_throttle: FailureThrottle  # per client address and email
    login_ip_throttle: FailureThrottle  # per client address, across emails
    auth_throttle: FailureThrottle  # bad bearer tokens, per client address


class NotifierWeb:
    """Mounts the notifier on a Flask app: ``NotifierWeb().init_app(app)``.

    Registers the JSON API blueprint, the login/logout routes and the security headers;
    stores itself in ``app.extensions["notifier"]``. Per-app state (the database, the
    throttles) is kept by app, never on ``self.app``, so one extension can serve many apps.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._state: WeakKeyDictionary[Flask, _AppState] = WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the notifier on ``app``; refuses an app that already has it."""
        if "notifier" in app.extensions:
            raise RuntimeError(
                "NotifierWeb is already registered on this app; call init_app once per app"
            )
        if "NOTIFIER_DATABASE_URL" not in app.config:
            app.config["NOTIFIER_DATABASE_URL"] = Settings.from_env().database_url
        app.config.setdefault("NOTIFIER_TIMEZONE", str(configured_timezone()))
        app.config.setdefault("NOTIFIER_MAX_BODY_BYTES", 64 * 1024)
        app.config.setdefault("NOTIFIER_LOGIN_ATTEMPTS", 5)
        app.config.setdefault("NOTIFIER_LOGIN_WINDOW_SECONDS", 15 * 60)
        app.config.setdefault("NOTIFIER_AUTH_FAILURES_PER_IP", 100)
        app.config.setdefault("NOTIFIER_RATELIMIT_STORAGE_URL", "memory://")
        app.config.setdefault("NOTIFIER_CONTENT_SECURITY_POLICY", _DEFAULT_CSP)
        app.config.setdefault("NOTIFIER_ENGINE_OPTIONS", {})
        app.config.setdefault("NOTIFIER_POLL_INTERVAL_MS", 60_000)
        # The session cookie carries the login: keep it from scripts and cross-site posts.
        app.config["SESSION_COOKIE_HTTPONLY"] = True
        if not app.config.get("SESSION_COOKIE_SAMESITE"):
            app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

        window = float(app.config["NOTIFIER_LOGIN_WINDOW_SECONDS"])
        attempts = int(app.config["NOTIFIER_LOGIN_ATTEMPTS"])
        counts = throttle_storage(app.config["NOTIFIER_RATELIMIT_STORAGE_URL"])
        self._state[app] = _AppState(
            database=Database(
                app.config["NOTIFIER_DATABASE_URL"], **app.config["NOTIFIER_ENGINE_OPTIONS"]
            ),
            login_throttle=FailureThrottle(attempts, window, counts, "login"),
            login_ip_throttle=FailureThrottle(4 * attempts, window, counts, "login-ip"),
            auth_throttle=FailureThrottle(
                int(app.config["NOTIFIER_AUTH_FAILURES_PER_IP"]), window, counts, "bad-token"
            ),
        )
        app.extensions["notifier"] = self

        from .api import api_blueprint, register_api_errors
        from .auth import auth_blueprint, csrf_token, current_admin
        from .pages import pages_blueprint

        app.register_blueprint(api_blueprint)
        app.register_blueprint(auth_blueprint)
        app.register_blueprint(pages_blueprint)
        register_api_errors(app)
        app.add_template_global(csrf_token, "csrf_token")
        app.add_template_global(current_admin, "current_admin")
        app.after_request(_security_headers)
        app.teardown_appcontext(_close_session)

    def state(self, app: Flask) -> _AppState:
        """The per-app state created by ``init_app``."""
        try:
            return self._state[app]
        except KeyError:
            raise RuntimeError("NotifierWeb.init_app(app) was not called for this app") from None


def app_state() -> _AppState:
    """The notifier's state for the current app."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    extension: NotifierWeb = app.extensions["notifier"]
    return extension.state(app)


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


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_notifier_session", None)
    if session is not None:
        session.rollback()
        session.close()


def _security_headers(response: Response) -> Response:
    """Security headers on the notifier's own responses (API, login, pages)."""
    path = request.path
    if not (
        path.startswith(API_PREFIX) or path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
    ):
        return response
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy", current_app.config["NOTIFIER_CONTENT_SECURITY_POLICY"]
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if path.startswith(API_PREFIX) or response.mimetype == "text/html":
        # Notifications are private: no shared or browser cache may keep them.
        headers.setdefault("Cache-Control", "no-store")
    return response
