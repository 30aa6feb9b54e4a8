"""NotifierWeb: the Flask extension that mounts the admin API, pages and login on any app.

A good guest: everything it registers lives under the host's chosen prefixes
(``NOTIFIER_URL_PREFIX``, ``NOTIFIER_API_PREFIX``); its headers, CSP, cache rule and JSON
errors are hooks on its own blueprints; it changes no host setting; its template globals
and session keys start with ``notifier_``; a host route of the same path always wins.
"""

from __future__ import annotations

import os
from typing import Any
from weakref import WeakKeyDictionary

from flask import Blueprint, Flask, Response, current_app, request

from notifier import (
    Database,
    Settings,
    configured_timezone,
    env_flag,
    kick_after_commit,
    live_redis_url_from_env,
    validate_live_redis_url,
)

from . import actions as actions  # the same
from . import delivery_pages as delivery_pages  # its views join pages_blueprint on import
from . import escalation_pages as escalation_pages  # the same
from . import health_pages as health_pages  # the same
from . import preference_pages as preference_pages  # the same
from .api import api_blueprint
from .auth import auth_blueprint, csrf_token, current_admin, forbidden_page
from .host_login import HostLogin, host_login
from .live import Hub
from .metrics import metrics_blueprint, observe_request, start_timer
from .outage import DATABASE_ERRORS, unavailable_page
from .pages import pages_blueprint
from .routing import add_converters, drop_page_arg
from .state import (
    ADMIN_PREFIX,
    API_PREFIX,
    BASE_TEMPLATE,
    EXTENSION_KEY,
    AppState,
    close_session,
)
from .throttle import FailureThrottle, throttle_storage

__all__ = ["NotifierWeb"]


_DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class NotifierWeb:
    """Mounts the notifier on a Flask app: ``NotifierWeb(app)`` or ``.init_app(app)``.

    ``db``: a Flask-SQLAlchemy ``SQLAlchemy`` already initialised on the app; the notifier
    then uses its engine and ``db.session`` (a notification written in a host request
    commits or rolls back with the host's work). ``host_login``: a :class:`HostLogin`
    saying who the current admin is; the built-in login form is then not used.

    Stores itself in ``app.extensions["notifier"]``; per-app state is kept by app, never
    on ``self.app``, so one extension can serve many apps.
    """

    def __init__(
        self, app: Flask | None = None, *, db: Any = None, host_login: HostLogin | None = None
    ) -> None:
        self._state: WeakKeyDictionary[Flask, AppState] = WeakKeyDictionary()
        self._db = db
        self._host_login = host_login
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the notifier on ``app``; refuses an app that already has it."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "NotifierWeb is already registered on this app; call init_app once per app"
            )
        # Only NOTIFIER_* keys are filled in: the host's own settings (session cookie
        # flags included) are the host's; README lists the cookie flags we recommend.
        app.config.setdefault("NOTIFIER_URL_PREFIX", ADMIN_PREFIX)
        # The template every notifier page is rendered inside (like Flask-Admin's
        # base_template): a host names its own base, with blocks title, head and content.
        app.config.setdefault("NOTIFIER_BASE_TEMPLATE", BASE_TEMPLATE)
        app.config.setdefault("NOTIFIER_API_PREFIX", API_PREFIX)
        app.config.setdefault("NOTIFIER_TIMEZONE", str(configured_timezone()))
        app.config.setdefault("NOTIFIER_MAX_BODY_BYTES", 64 * 1024)
        app.config.setdefault("NOTIFIER_LOGIN_ATTEMPTS", 5)
        app.config.setdefault("NOTIFIER_LOGIN_WINDOW_SECONDS", 15 * 60)
        app.config.setdefault("NOTIFIER_AUTH_FAILURES_PER_IP", 100)
        app.config.setdefault("NOTIFIER_RATELIMIT_STORAGE_URL", "memory://")
        app.config.setdefault("NOTIFIER_CONTENT_SECURITY_POLICY", _DEFAULT_CSP)
        app.config.setdefault("NOTIFIER_ENGINE_OPTIONS", {})
        app.config.setdefault("NOTIFIER_POLL_INTERVAL_MS", 60_000)
        app.config.setdefault("NOTIFIER_MAX_STREAMS", 64)
        app.config.setdefault("NOTIFIER_STREAM_HEARTBEAT_SECONDS", 15)
        app.config.setdefault("NOTIFIER_STREAM_MAX_SECONDS", 300)
        app.config.setdefault("NOTIFIER_STREAM_RETRY_MS", 3000)
        app.config.setdefault("NOTIFIER_LIVE_POLL_SECONDS", 0.5)
        app.config.setdefault("NOTIFIER_LIVE_REDIS_URL", live_redis_url_from_env())
        app.config.setdefault("NOTIFIER_METRICS_PATH", "/metrics")
        app.config.setdefault("NOTIFIER_METRICS_TOKEN", None)
        # The engine's rule for delivery URLs (notifier.delivery.egress): checked on save here too.
        app.config.setdefault(
            "NOTIFIER_DELIVERY_ALLOW_PRIVATE",
            env_flag(os.environ, "NOTIFIER_DELIVERY_ALLOW_PRIVATE"),
        )
        pages_prefix = _prefix(app, "NOTIFIER_URL_PREFIX")
        api_prefix = _prefix(app, "NOTIFIER_API_PREFIX")

        window = float(app.config["NOTIFIER_LOGIN_WINDOW_SECONDS"])
        attempts = int(app.config["NOTIFIER_LOGIN_ATTEMPTS"])
        database, host_session = self._database(app)
        counts = throttle_storage(app.config["NOTIFIER_RATELIMIT_STORAGE_URL"])
        self._state[app] = AppState(
            database=database,
            login_throttle=FailureThrottle(attempts, window, counts, "login"),
            login_ip_throttle=FailureThrottle(4 * attempts, window, counts, "login-ip"),
            auth_throttle=FailureThrottle(
                int(app.config["NOTIFIER_AUTH_FAILURES_PER_IP"]), window, counts, "bad-token"
            ),
            host_login=self._host_login,
            host_session=host_session,
            hub=Hub(
                database,
                max_streams=int(app.config["NOTIFIER_MAX_STREAMS"]),
                poll_seconds=float(app.config["NOTIFIER_LIVE_POLL_SECONDS"]),
                redis_url=app.config["NOTIFIER_LIVE_REDIS_URL"],
            ),
        )
        app.extensions[EXTENSION_KEY] = self
        kick = app.config.get("NOTIFIER_DELIVERY_KICK")
        if kick is not None:
            if not callable(kick):
                raise TypeError(
                    "NOTIFIER_DELIVERY_KICK must be a callable taking no arguments, e.g. "
                    'lambda: celery_app.send_task("notifier.dispatch_deliveries")'
                )
            # Deliveries queued by a request (test events, replays, notifications) are
            # sent by a dispatcher started after the commit, not at the next sweep.
            kick_after_commit(database.sessionmaker, kick)

        add_converters(app.url_map)
        app.register_blueprint(api_blueprint, url_prefix=api_prefix)
        app.register_blueprint(auth_blueprint, url_prefix=pages_prefix)
        app.register_blueprint(pages_blueprint, url_prefix=pages_prefix)
        app.register_blueprint(metrics_blueprint, url_prefix=_prefix(app, "NOTIFIER_METRICS_PATH"))
        app.add_template_global(csrf_token, "notifier_csrf_token")
        app.add_template_global(current_admin, "notifier_current_admin")
        app.add_template_global(_uses_builtin_login, "notifier_builtin_login")
        app.teardown_appcontext(close_session)  # closes only the notifier's own session

    def _database(self, app: Flask) -> tuple[Database, Any]:
        live = app.config["NOTIFIER_LIVE_REDIS_URL"]  # this process's writes reach the others
        if live:
            validate_live_redis_url(live)
        if self._db is None:
            if "NOTIFIER_DATABASE_URL" not in app.config:
                app.config["NOTIFIER_DATABASE_URL"] = Settings.from_env().database_url
            url = app.config["NOTIFIER_DATABASE_URL"]
            return Database(url, live_redis_url=live, **app.config["NOTIFIER_ENGINE_OPTIONS"]), None
        if "sqlalchemy" not in app.extensions:
            raise RuntimeError(
                "NotifierWeb(app, db=db) needs db.init_app(app) (or SQLAlchemy(app)) first"
            )
        with app.app_context():
            engine = self._db.engine
        app.config.setdefault(
            "NOTIFIER_DATABASE_URL", engine.url.render_as_string(hide_password=False)
        )
        return Database.for_engine(engine, live_redis_url=live), self._db.session

    def state(self, app: Flask) -> AppState:
        """The per-app state created by ``init_app``."""
        try:
            return self._state[app]
        except KeyError:
            raise RuntimeError("NotifierWeb.init_app(app) was not called for this app") from None


def _prefix(app: Flask, key: str) -> str:
    value = str(app.config[key])
    if not value.startswith("/") or value.endswith("/"):
        raise ValueError(
            f"{key}={value!r}: use a path that starts with '/' and does not end with one, "
            "e.g. '/admin/notifier'"
        )
    return value


def _uses_builtin_login() -> bool:
    return host_login() is None


def _security_headers(response: Response) -> Response:
    """Security headers on the notifier's own responses (API, login, pages, static)."""
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy", current_app.config["NOTIFIER_CONTENT_SECURITY_POLICY"]
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.blueprint == api_blueprint.name or response.mimetype == "text/html":
        # Notifications are private: no shared or browser cache may keep them.
        headers.setdefault("Cache-Control", "no-store")
    return response


# Hooks on the notifier's own blueprints: they run for its routes only, never the host's.
_OWN: tuple[Blueprint, ...] = (api_blueprint, auth_blueprint, pages_blueprint, metrics_blueprint)
for _blueprint in _OWN:
    _blueprint.after_request(_security_headers)
    _blueprint.url_value_preprocessor(drop_page_arg)
# API latency: the timer is the blueprint's first hook, so refused requests are timed too.
api_blueprint.before_request_funcs.setdefault(None, []).insert(0, start_timer)
api_blueprint.after_request(observe_request)

# People get a page saying the database is out of reach or not set up, not a 500 (the API
# answers JSON 503s from its own handler).
for _blueprint in (auth_blueprint, pages_blueprint):
    for _error in DATABASE_ERRORS:
        _blueprint.register_error_handler(_error, unavailable_page)
    # A signed-in host user who is not an admin: a page in the layout saying so.
    _blueprint.register_error_handler(403, forbidden_page)
