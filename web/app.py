"""The app factory: ``create_app()`` for ``notifier serve``, ``create_app({...})`` for tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, redirect, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from notifier.config import Settings

from .api.errors import json_errors_under_api
from .extension import NotifierWeb


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Flask app serving the notifier API and login; ``config`` overrides the environment."""
    app = Flask(__name__, static_folder=None)
    overrides = dict(config or {})
    if "NOTIFIER_DATABASE_URL" not in overrides or "SECRET_KEY" not in overrides:
        settings = Settings.from_env()
        app.config.update(
            NOTIFIER_DATABASE_URL=settings.database_url,
            SECRET_KEY=settings.secret_key,
            NOTIFIER_TIMEZONE=settings.timezone,
            SESSION_COOKIE_SECURE=settings.cookie_secure,
            NOTIFIER_TRUSTED_PROXIES=settings.trusted_proxies,
        )
    # The cookie flags README recommends to a host; here the notifier is the whole app.
    app.config.update(
        SESSION_COOKIE_NAME="notifier_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.config.update(overrides)
    NotifierWeb().init_app(app)
    # Standalone, the notifier owns every URL: JSON errors anywhere under /api/, and the
    # bare prefix (/admin) leads to the pages as it did before the prefix became a rule.
    json_errors_under_api(app)
    app.add_url_rule(
        app.config["NOTIFIER_URL_PREFIX"],
        "notifier_home",
        lambda: redirect(url_for("notifier_pages.index")),
    )
    proxies = int(app.config.get("NOTIFIER_TRUSTED_PROXIES", 0) or 0)
    if proxies:
        # Behind N reverse proxies, the client address (which the login and token throttles
        # count by) is the one the proxies put in X-Forwarded-For, not the last proxy's.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    return app
