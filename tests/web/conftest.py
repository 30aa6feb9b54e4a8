"""Web fixtures: an app on each database, an admin, tokens, and clients (bearer or cookie)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from notifier.web.auth import SESSION_CSRF_KEY

from notifier.accounts.tokens import create_token
from notifier.accounts.users import create_admin
from notifier.db import Database
from notifier.models import AdminUser

API = "/api/v1/admin/notifications"
PASSWORD = "correct horse battery"


@dataclass
class Admin:
    """An admin as the tests know it: id, email and the password in clear."""

    id: int
    email: str
    password: str


@pytest.fixture
def app_config(database: Database) -> dict[str, Any]:
    """The test configuration; tests may change it before asking for ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "NOTIFIER_DATABASE_URL": database.url,
        "NOTIFIER_TIMEZONE": "UTC",
        "NOTIFIER_AUTH_FAILURES_PER_IP": 10_000,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """The notifier app on the test database (SQLite and PostgreSQL)."""
    application = create_app(app_config)
    yield application
    application.extensions["notifier"].state(application).database.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client with no credentials."""
    return app.test_client()


def make_admin(database: Database, email: str = "admin@example.com") -> Admin:
    """Create an active admin and return what a test needs to log in as them."""
    with database.session_scope() as db:
        user = create_admin(db, email=email, password=PASSWORD, display_name="Ada")
        return Admin(user.id, user.email, PASSWORD)


def make_token(database: Database, admin: Admin, name: str = "test") -> str:
    """A new API token for ``admin``, in clear."""
    with database.session_scope() as db:
        user = db.get(AdminUser, admin.id)
        assert user is not None
        _, plaintext = create_token(db, user=user, name=name)
        return plaintext


@pytest.fixture
def admin(database: Database) -> Admin:
    """An active admin."""
    return make_admin(database)


@pytest.fixture
def token(database: Database, admin: Admin) -> str:
    """A live API token of ``admin``."""
    return make_token(database, admin)


@pytest.fixture
def api(app: Flask, token: str) -> FlaskClient:
    """A client that sends the admin's bearer token on every request."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


def page_csrf(client: FlaskClient, path: str = "/admin/login") -> str:
    """The CSRF token from a page's <meta name="csrf-token">."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, html
    return match.group(1)


def login(client: FlaskClient, admin: Admin, next_url: str | None = None) -> str:
    """Log ``client`` in through the form; returns the session's CSRF token."""
    csrf = page_csrf(client)
    query = {"next": next_url} if next_url else {}
    response = client.post(
        "/admin/login",
        query_string=query,
        data={"email": admin.email, "password": admin.password, "csrf_token": csrf},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    # What a page's <meta name="csrf-token"> would carry for this session.
    with client.session_transaction() as session:
        token = session[SESSION_CSRF_KEY]
    assert isinstance(token, str)
    return token


@pytest.fixture
def browser(app: Flask, admin: Admin) -> tuple[FlaskClient, str]:
    """A client logged in with the session cookie, and its CSRF token."""
    test_client = app.test_client()
    return test_client, login(test_client, admin)
