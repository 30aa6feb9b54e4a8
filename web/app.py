"""The app factory: ``create_app()`` for ``notifier serve``, ``create_app({...})`` for tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

from notifier.config import Settings

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
        )
    app.config.update(
        SESSION_COOKIE_NAME="notifier_session",
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.config.update(overrides)
    NotifierWeb().init_app(app)
    return app
