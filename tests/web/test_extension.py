"""NotifierWeb on a host app, and the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from notifier.web import NotifierWeb, create_app

from notifier.db import Database
from tests.web.conftest import API, make_admin, make_token


def test_init_app_refuses_a_second_registration(app: Flask) -> None:
    assert isinstance(app.extensions["notifier"], NotifierWeb)
    with pytest.raises(RuntimeError, match="already registered"):
        NotifierWeb().init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        app.extensions["notifier"].init_app(app)


def test_a_host_app_mounts_the_api_next_to_its_own_routes(database: Database) -> None:
    host = Flask("host")
    host.config.update(SECRET_KEY="host", NOTIFIER_DATABASE_URL=database.url)

    @host.route("/")
    def home() -> str:
        return "host home"

    extension = NotifierWeb()
    extension.init_app(host)
    assert not hasattr(extension, "app")
    token = make_token(database, make_admin(database))
    client = host.test_client()
    assert client.get("/").get_data(as_text=True) == "host home"
    assert client.get("/nope").mimetype == "text/html"  # host pages keep HTML errors
    response = client.get(f"{API}/unread-count", headers={"Authorization": f"Bearer {token}"})
    assert response.json == {"unread_count": 0, "unread_count_exact": True}
    # Issue 9: init_app changes no host setting (docs/embedding.md recommends the cookie flags).
    assert host.config["SESSION_COOKIE_SAMESITE"] is None
    assert host.config["SESSION_COOKIE_HTTPONLY"] is True  # Flask's own default
    extension.state(host).database.dispose()


def test_one_extension_serves_two_apps(database: Database) -> None:
    extension = NotifierWeb()
    apps = [Flask(f"a{i}") for i in range(2)]
    for one in apps:
        one.config.update(SECRET_KEY="k", NOTIFIER_DATABASE_URL=database.url)
        extension.init_app(one)
    assert extension.state(apps[0]) is not extension.state(apps[1])
    for one in apps:
        assert one.test_client().get(f"{API}/unread-count").status_code == 401
        extension.state(one).database.dispose()


def test_create_app_takes_test_config(app_config: dict[str, Any]) -> None:
    app = create_app({**app_config, "NOTIFIER_MAX_BODY_BYTES": 100})
    assert app.config["TESTING"] is True
    token_client = app.test_client()
    response = token_client.post(API, data=b"x" * 200, content_type="application/json")
    assert response.status_code == 413
    app.extensions["notifier"].state(app).database.dispose()


def test_create_app_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", database.url)
    monkeypatch.setenv("NOTIFIER_SECRET_KEY", "from-env")
    monkeypatch.setenv("NOTIFIER_COOKIE_SECURE", "true")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["notifier"].state(app).database.dispose()


def test_app_keeps_a_generated_secret_key(
    monkeypatch: pytest.MonkeyPatch, database: Database, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", database.url)
    monkeypatch.delenv("NOTIFIER_SECRET_KEY", raising=False)
    monkeypatch.setenv("NOTIFIER_INSTANCE_PATH", str(tmp_path / "inst"))
    first = create_app()
    assert len(first.config["SECRET_KEY"]) >= 32
    # the generated secret is kept, so a restart keeps sessions valid
    again = create_app()
    assert again.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert oct((tmp_path / "inst" / "secret_key").stat().st_mode & 0o777) == "0o600"
    for one in (first, again):
        one.extensions["notifier"].state(one).database.dispose()


def test_standalone_bare_prefix_leads_to_the_pages(app_config: dict[str, Any]) -> None:
    app = create_app(app_config)
    client = app.test_client()
    first = client.get("/admin")
    assert first.status_code == 302 and first.headers["Location"] == "/admin/"
    assert client.get("/admin/").headers["Location"].startswith("/admin/login?next=")
    app.extensions["notifier"].state(app).database.dispose()
