"""NotifierWeb: the Flask extension that mounts the admin API and login on any Flask app."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from flask import Flask, Response, current_app, request

from notifier.config import Settings, configured_timezone
from notifier.db import Database

from .api import api_blueprint, register_api_errors
from .auth import auth_blueprint, csrf_token, current_admin
from .pages import pages_blueprint
from .state import (
    ADMIN_PREFIX,
    API_PREFIX,
    EXTENSION_KEY,
    AppState,
    app_state,
    app_timezone,
    close_session,
    db_session,
)
from .throttle import FailureThrottle

#: Re-exported for code that imported them from here before they moved to ``state``.
__all__ = [
    "ADMIN_PREFIX",
    "API_PREFIX",
    "NotifierWeb",
    "app_state",
    "app_timezone",
    "db_session",
]


_DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class NotifierWeb:
    """Mounts the notifier on a Flask app: ``NotifierWeb().init_app(app)``.

    Registers the JSON API blueprint, the login/logout routes and the security headers;
    stores itself in ``app.extensions["notifier"]``. Per-app state (the database, the
    throttles) is kept by app, never on ``self.app``, so one extension can serve many apps.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._state: WeakKeyDictionary[Flask, AppState] = WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the notifier on ``app``; refuses an app that already has it."""
        if EXTENSION_KEY in app.extensions:
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
        app.config.setdefault("NOTIFIER_CONTENT_SECURITY_POLICY", _DEFAULT_CSP)
        app.config.setdefault("NOTIFIER_ENGINE_OPTIONS", {})
        app.config.setdefault("NOTIFIER_POLL_INTERVAL_MS", 60_000)
        # The session cookie carries the login: keep it from scripts and cross-site posts.
        app.config["SESSION_COOKIE_HTTPONLY"] = True
        if not app.config.get("SESSION_COOKIE_SAMESITE"):
            app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

        window = float(app.config["NOTIFIER_LOGIN_WINDOW_SECONDS"])
        self._state[app] = AppState(
            database=Database(
                app.config["NOTIFIER_DATABASE_URL"], **app.config["NOTIFIER_ENGINE_OPTIONS"]
            ),
            login_throttle=FailureThrottle(int(app.config["NOTIFIER_LOGIN_ATTEMPTS"]), window),
            login_ip_throttle=FailureThrottle(
                4 * int(app.config["NOTIFIER_LOGIN_ATTEMPTS"]), window
            ),
            auth_throttle=FailureThrottle(int(app.config["NOTIFIER_AUTH_FAILURES_PER_IP"]), window),
        )
        app.extensions[EXTENSION_KEY] = self

        app.register_blueprint(api_blueprint)
        app.register_blueprint(auth_blueprint)
        app.register_blueprint(pages_blueprint)
        register_api_errors(app)
        app.add_template_global(csrf_token, "csrf_token")
        app.add_template_global(current_admin, "current_admin")
        app.after_request(_security_headers)
        app.teardown_appcontext(close_session)

    def state(self, app: Flask) -> AppState:
        """The per-app state created by ``init_app``."""
        try:
            return self._state[app]
        except KeyError:
            raise RuntimeError("NotifierWeb.init_app(app) was not called for this app") from None


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
