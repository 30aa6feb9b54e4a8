"""A database out of reach: 503 with Retry-After, JSON for the API and a page for people."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from notifier.web.auth import SESSION_ID_KEY

from notifier.db import Database
from tests.web.conftest import API, login, make_admin, make_token, page_csrf
from tests.worker.conftest import proxied


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()  # nothing listens there now: connections are refused at once
    return port


@pytest.fixture
def down_app(postgres_url: str) -> Iterator[Flask]:
    """The app on a PostgreSQL URL whose port nobody listens on."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/notifier"
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "NOTIFIER_DATABASE_URL": url})
    yield app
    app.extensions["notifier"].state(app).database.dispose()


def _is_unavailable_json(response: object) -> None:
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert response.headers["Retry-After"].isdigit()  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["error"]["code"] == "service_unavailable"
    assert "database is unavailable" in body["error"]["message"]


def test_api_answers_503_with_retry_after(down_app: Flask) -> None:
    client = down_app.test_client()
    for path in ("", "/recent", "/alerts", "/alerts/stats", "/1"):
        _is_unavailable_json(client.get(API + path, headers={"Authorization": "Bearer ntf_x"}))
    response = client.post(API, json={"x": 1}, headers={"Authorization": "Bearer ntf_x"})
    _is_unavailable_json(response)


def test_login_page_says_temporarily_unavailable(down_app: Flask) -> None:
    client = down_app.test_client()
    csrf = page_csrf(client)  # the form itself needs no database
    response = client.post(
        "/admin/login", data={"email": "a@example.com", "password": "x", "csrf_token": csrf}
    )
    assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Temporarily unavailable" in html and "Traceback" not in html


def test_a_cut_database_gives_503s_and_recovers(pg_database: Database) -> None:
    admin = make_admin(pg_database)
    token = make_token(pg_database, admin)
    with proxied(pg_database.url) as (proxy, url):
        app = create_app({"TESTING": True, "SECRET_KEY": "k", "NOTIFIER_DATABASE_URL": url})
        browser: FlaskClient = app.test_client()
        login(browser, admin)
        api = app.test_client()
        api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        assert browser.get("/admin/notifications").status_code == 200
        assert api.get(f"{API}/unread-count").status_code == 200

        proxy.cut()
        page = browser.get("/admin/notifications?tab=alerts")
        assert page.status_code == 503 and "Temporarily unavailable" in page.get_data(True)
        assert page.headers["Retry-After"].isdigit()
        _is_unavailable_json(api.get(f"{API}/unread-count"))
        _is_unavailable_json(browser.get(f"{API}/recent"))

        proxy.restore()
        assert browser.get("/admin/notifications").status_code == 200
        assert api.get(f"{API}/unread-count").json == {
            "unread_count": 0,
            "unread_count_exact": True,
        }
        app.extensions["notifier"].state(app).database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on a database where ``notifier init-db`` was never run (no tables at all)."""
    if request.param == "postgresql":
        url = str(request.getfixturevalue("empty_postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'never-initialised.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "NOTIFIER_DATABASE_URL": url})
    yield app
    app.extensions["notifier"].state(app).database.dispose()


def test_a_missing_schema_says_to_run_init_db(unmigrated_app: Flask) -> None:
    client = unmigrated_app.test_client()
    bearer = {"Authorization": "Bearer ntf_x"}
    for response in (
        client.get(f"{API}/unread-count", headers=bearer),
        client.get(f"{API}/stream", headers=bearer),
        client.post(API, json={"x": 1}, headers=bearer),
    ):
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert error["code"] == "service_unavailable"
        assert "`notifier init-db`" in error["message"]
    csrf = page_csrf(client)  # the form itself needs no database
    login_form = {"email": "a@example.com", "password": "x", "csrf_token": csrf}
    signed_in = unmigrated_app.test_client()
    with signed_in.session_transaction() as session:
        session[SESSION_ID_KEY] = "a session from before the database was replaced"
    for response in (
        client.post("/admin/login", data=login_form),
        signed_in.get("/admin/notifications"),
    ):
        assert response.status_code == 503 and response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "Database not set up" in html and "<code>notifier init-db</code>" in html
        assert "does not exist" not in html and "no such table" not in html
