"""The app factory: ``create_app()`` for ``notifier serve``, ``create_app({...})`` for tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, redirect, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from notifier import Settings, ensure_instance

from .api.errors import json_errors_under_api
from .extension import NotifierWeb

_SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


def instance_secret_key(instance: Path) -> str:
    """A random key kept in ``instance/secret_key``, so sessions survive a restart.

    Made by the web app when it needs a key and NOTIFIER_SECRET_KEY is unset; reading the
    settings never writes it (a worker has no use for it).
    """
    ensure_instance(instance, "NOTIFIER_SECRET_KEY")
    path = instance / _SECRET_FILE
    if not path.exists():
        # Write aside, then link into place: two processes starting at once agree on one key.
        tmp = instance / f".{_SECRET_FILE}.{os.getpid()}"
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Flask app serving the notifier API and login; ``config`` overrides the environment."""
    app = Flask(__name__, static_folder=None)
    overrides = dict(config or {})
    if "NOTIFIER_DATABASE_URL" not in overrides or "SECRET_KEY" not in overrides:
        settings = Settings.from_env()
        secret = overrides.get("SECRET_KEY") or settings.secret_key
        app.config.update(
            NOTIFIER_DATABASE_URL=settings.database_url,
            SECRET_KEY=secret or instance_secret_key(settings.instance_path),
            NOTIFIER_TIMEZONE=settings.timezone,
            SESSION_COOKIE_SECURE=settings.cookie_secure,
            NOTIFIER_TRUSTED_PROXIES=settings.trusted_proxies,
            NOTIFIER_RATELIMIT_STORAGE_URL=settings.ratelimit_storage_url,
        )
    # The cookie flags README recommends to a host; here the notifier is the whole app.
    app.config.update(
        SESSION_COOKIE_NAME="notifier_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        NOTIFIER_PERMANENT_LOGIN=True,
    )
    streams = os.environ.get("NOTIFIER_MAX_STREAMS")  # set by `notifier serve --max-streams`
    if streams:
        app.config["NOTIFIER_MAX_STREAMS"] = int(streams)
    if os.environ.get("NOTIFIER_METRICS_TOKEN"):  # turns /metrics on (README: Metrics)
        app.config["NOTIFIER_METRICS_TOKEN"] = os.environ["NOTIFIER_METRICS_TOKEN"]
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
