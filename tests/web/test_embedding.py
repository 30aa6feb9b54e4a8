"""The notifier as a guest in a host Flask app: prefixes, order, headers, login, session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, abort, g, jsonify, render_template_string, request, session
from flask_sqlalchemy import SQLAlchemy
from jinja2 import DictLoader
from notifier.web import NotifierWeb, db_session
from notifier.web.host_login import HostLogin, HostUser
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from notifier import Database, platform_alert_service
from notifier.models import AdminNotification, AdminUser
from tests.web.conftest import API, make_token

_HOST_HEADERS = {"X-Host": "shop"}


def _host(database: Database, **config: Any) -> Flask:
    host = Flask("shop")
    host.config.update(SECRET_KEY="host-secret", NOTIFIER_DATABASE_URL=database.url, **config)

    @host.after_request
    def _mark(response: Any) -> Any:
        response.headers.update(_HOST_HEADERS)
        return response

    @host.errorhandler(404)
    def _not_found(_exc: Exception) -> tuple[str, int]:
        return "shop: page not found", 404

    return host


def _host_routes(host: Flask) -> None:
    host.add_url_rule("/admin/", "dashboard", lambda: "shop dashboard")
    host.add_url_rule("/admin/login", "shop_login", lambda: "shop login", methods=["GET", "POST"])
    host.add_url_rule("/admin/static/<path:name>", "shop_static", lambda name: f"shop {name}")
    host.add_url_rule("/admin/<int:order_id>", "order", lambda order_id: f"order {order_id}")
    host.add_url_rule("/api/orders", "orders", lambda: jsonify(orders=[]))


@pytest.fixture(params=["host-first", "notifier-first"])
def host(request: pytest.FixtureRequest, database: Database) -> Iterator[Flask]:
    """A host app with /admin/ pages and /api/ routes of its own, registered in each order."""
    app = _host(database)
    app.add_template_global(lambda: "host-csrf", "csrf_token")
    if request.param == "host-first":
        _host_routes(app)
        NotifierWeb(app)
    else:
        NotifierWeb(app)
        _host_routes(app)
    yield app
    app.extensions["notifier"].state(app).database.dispose()


def test_host_routes_win_in_either_registration_order(host: Flask, database: Database) -> None:
    client = host.test_client()
    assert client.get("/admin/").get_data(as_text=True) == "shop dashboard"
    assert client.get("/admin/login").get_data(as_text=True) == "shop login"
    assert client.get("/admin/static/site.css").get_data(as_text=True) == "shop site.css"
    assert client.get("/admin/42").get_data(as_text=True) == "order 42"
    assert client.get("/api/orders").json == {"orders": []}
    # The notifier's own pages still answer where the host has nothing.
    assert client.get("/admin/notifications").status_code == 302
    css = client.get("/admin/static/notifier/notifier.css")
    assert css.status_code == 302 or "shop notifier/notifier.css" in css.get_data(as_text=True)
    token = make_token(database, _admin(database))
    answer = client.get(f"{API}/unread-count", headers={"Authorization": f"Bearer {token}"})
    assert answer.json == {"unread_count": 0, "unread_count_exact": True}


def test_host_pages_keep_host_headers_and_host_404s(host: Flask) -> None:
    client = host.test_client()
    page = client.get("/admin/")
    assert page.headers["X-Host"] == "shop"
    for header in ("Content-Security-Policy", "X-Frame-Options", "Cache-Control"):
        assert header not in page.headers
    missing = client.get("/api/nope")
    assert missing.status_code == 404 and missing.get_data(as_text=True) == "shop: page not found"
    assert client.get("/admin/nope/deeper").get_data(as_text=True) == "shop: page not found"
    # The notifier's own responses carry its headers, and its API errors are JSON.
    ours = client.get(f"{API}/nope")
    assert ours.status_code == 401 and ours.mimetype == "application/json"
    assert "Content-Security-Policy" in ours.headers and ours.headers["Cache-Control"] == "no-store"


def test_init_app_changes_no_host_setting_and_namespaces_its_globals(
    host: Flask, database: Database
) -> None:
    fresh = _host(database)
    before = dict(fresh.config)
    NotifierWeb(fresh)
    changed = {k for k in fresh.config if fresh.config[k] != before.get(k, object())}
    assert changed and all(k.startswith("NOTIFIER_") for k in changed), changed
    fresh.extensions["notifier"].state(fresh).database.dispose()
    with host.test_request_context("/"):
        assert render_template_string("{{ csrf_token() }}") == "host-csrf"
        assert render_template_string("{{ notifier_csrf_token() }}") != "host-csrf"


def test_prefixes_are_the_hosts_choice(database: Database) -> None:
    host = _host(
        database, NOTIFIER_URL_PREFIX="/ops/notifier", NOTIFIER_API_PREFIX="/ops/api/notifications"
    )
    NotifierWeb(host)
    client = host.test_client()
    page = client.get("/ops/notifier/notifications")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/ops/notifier/login?next=")
    assert client.get("/ops/notifier/login").status_code == 200
    assert client.get("/ops/notifier/static/notifier/bell.js").status_code == 200
    token = make_token(database, _admin(database))
    answer = client.get(
        "/ops/api/notifications/unread-count", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.json == {"unread_count": 0, "unread_count_exact": True}
    assert client.get("/admin/login").status_code == 404
    assert client.get(f"{API}/unread-count").status_code == 404
    host.extensions["notifier"].state(host).database.dispose()


def test_a_bad_prefix_is_explained(database: Database) -> None:
    host = _host(database, NOTIFIER_URL_PREFIX="ops/")
    with pytest.raises(ValueError, match="NOTIFIER_URL_PREFIX='ops/'"):
        NotifierWeb(host)


def test_logging_in_leaves_the_hosts_session_cookie_as_the_host_made_it(
    database: Database,
) -> None:
    """The built-in login in a host app adds its own keys and nothing else to the cookie."""
    from tests.web.conftest import login

    app = _host(database)
    app.add_url_rule("/cart", "cart", lambda: (session.__setitem__("cart", [7]), "ok")[1])
    NotifierWeb(app)
    client = app.test_client()
    client.get("/cart")
    login(client, _admin(database))
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is None  # still a browser-session cookie
    with client.session_transaction() as stored:
        assert stored["cart"] == [7] and not stored.permanent
        assert {k for k in stored if k != "cart"} <= {"notifier_sid", "notifier_csrf"}
    app.extensions["notifier"].state(app).database.dispose()


def _admin(database: Database) -> Any:
    from tests.web.conftest import make_admin

    return make_admin(database, email="ada@example.com")


# -- the host's login ------------------------------------------------------------------

_USERS = {
    "u-1": HostUser("u-1", "hana@shop.example", "Hana Host"),
    "u-2": HostUser("u-2", "clerk@shop.example", "Clerk"),
}
_ADMINS = {"u-1"}


def _signed_in() -> str | None:
    return request.cookies.get("shop_user")


def _host_admin() -> HostUser | None:
    user = _signed_in()
    return _USERS[user] if user in _ADMINS else None


@pytest.fixture
def with_host_login(database: Database) -> Iterator[Flask]:
    yield from _with_host_login(database)


def _with_host_login(database: Database, **config: Any) -> Iterator[Flask]:
    app = _host(database, **config)
    app.add_url_rule("/login", "shop_login", lambda: "shop login form")
    login = HostLogin.at(_host_admin, "/login")
    NotifierWeb(app, host_login=HostLogin(login.current_admin, login.login_url, _signed_in_flag))
    yield app
    app.extensions["notifier"].state(app).database.dispose()


def _signed_in_flag() -> bool:
    return _signed_in() is not None


def test_host_login_sends_visitors_to_the_hosts_login_with_next(with_host_login: Flask) -> None:
    client = with_host_login.test_client()
    page = client.get("/admin/notifications?tab=alerts")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=%2Fadmin%2Fnotifications%3Ftab%3Dalerts"
    # The built-in form is not used: it forwards to the host's login too.
    assert client.get("/admin/login").headers["Location"].startswith("/login?next=")
    unauthorised = client.get(f"{API}/unread-count")
    assert (
        unauthorised.status_code == 401
        and "sign in at /login" in unauthorised.json["error"]["message"]
    )


def test_host_admin_is_mapped_once_and_resolves_alerts_by_name(
    with_host_login: Flask, database: Database
) -> None:
    with database.session_scope() as db:
        alert, _ = platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="error", title="Disk full", description="d",
            fingerprint="disk",
        )  # fmt: skip
        alert_id = alert.id
    client = with_host_login.test_client()
    client.set_cookie("shop_user", "u-1")
    page = client.get("/admin/notifications?tab=alerts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Hana Host" in html and "Sign out" not in html  # the host's header signs out
    csrf = re.search(r'data-notifier-csrf="([^"]+)"', html)
    assert csrf
    resolved = client.put(
        f"/api/v1/admin/notifications/alerts/{alert_id}/resolve",
        json={"resolution_notes": "freed space"},
        headers={"X-CSRF-Token": csrf.group(1)},
    )
    assert resolved.status_code == 200, resolved.get_data(as_text=True)
    client.get("/admin/notifications")
    with database.session_scope() as db:
        admins = db.scalars(select(AdminUser).where(AdminUser.external_id == "u-1")).all()
        assert [a.display_name for a in admins] == ["Hana Host"]
        assert resolved.json["resolved_by_user_id"] == admins[0].id
    after = client.get("/admin/notifications?tab=alerts&is_resolved=true").get_data(as_text=True)
    assert "Hana Host" in after or "hana@shop.example" in after


def test_a_signed_in_host_user_who_is_not_an_admin_gets_403_not_a_loop(
    with_host_login: Flask,
) -> None:
    client = with_host_login.test_client()
    client.set_cookie("shop_user", "u-2")
    assert client.get("/admin/notifications").status_code == 403
    assert client.get(f"{API}/unread-count").status_code == 401


# -- the host's layout ------------------------------------------------------------------

_HOST_BASE = """<!doctype html>
<html><head><title>{% block title %}Shop{% endblock %} - Shop</title>
{% block head %}{% endblock %}</head>
<body><nav aria-label="Shop"><a href="/shop">Shop dashboard</a></nav>
{% if notifier_current_admin() %}{% include "notifier/partials/header.html" %}{% endif %}
{% block content %}{% endblock %}</body></html>"""


@pytest.fixture
def in_host_layout(database: Database) -> Iterator[Flask]:
    """A host with its own login and base template, set as NOTIFIER_BASE_TEMPLATE."""
    for app in _with_host_login(database, NOTIFIER_BASE_TEMPLATE="shop/base.html"):
        app.jinja_loader = DictLoader({"shop/base.html": _HOST_BASE})  # the host's templates
        app.add_url_rule(
            "/shop",
            "shop_dashboard",
            lambda: render_template_string(
                '{% extends "shop/base.html" %}{% block content %}Orders{% endblock %}'
            ),
        )
        yield app


@pytest.mark.parametrize(
    "path", ["/admin/notifications", "/admin/notifications?tab=alerts", "/admin/channels",
             "/admin/deliveries", "/admin/settings"],
)  # fmt: skip
def test_every_page_renders_inside_the_hosts_base_template(
    in_host_layout: Flask, path: str
) -> None:
    client = in_host_layout.test_client()
    client.set_cookie("shop_user", "u-1")
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<nav aria-label="Shop"><a href="/shop">Shop dashboard</a></nav>' in html
    assert re.search(r"<title>[^<]+ - Shop</title>", html)  # the page's title, the host's frame
    assert "Notifier admin" not in html  # not the standalone header
    assert 'aria-label="Admin"' in html  # the notifier's own navigation, in the content
    # Its stylesheet and scripts come from its own static files, under its own CSP.
    assert '<link rel="stylesheet" href="/admin/static/notifier/notifier.css">' in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_standalone_app_keeps_its_own_layout(with_host_login: Flask) -> None:
    assert with_host_login.config["NOTIFIER_BASE_TEMPLATE"] == "notifier/base.html"
    client = with_host_login.test_client()
    client.set_cookie("shop_user", "u-1")
    html = client.get("/admin/channels").get_data(as_text=True)
    assert '<a class="nt-brand" href="/admin/notifications">Notifier admin</a>' in html
    assert 'aria-label="Shop"' not in html


def test_a_signed_in_non_admin_gets_a_styled_403_and_no_bell(in_host_layout: Flask) -> None:
    client = in_host_layout.test_client()
    client.set_cookie("shop_user", "u-2")
    page = client.get("/admin/notifications")
    assert page.status_code == 403
    html = page.get_data(as_text=True)
    assert '<nav aria-label="Shop">' in html and "<h1>No access to the notifier</h1>" in html
    assert "this account is not a notifier admin" in html
    assert "Sign in" not in html and 'aria-label="Admin"' not in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    # The host's own page: the bell snippet renders nothing for them.
    home = client.get("/shop").get_data(as_text=True)
    assert "Orders" in home and "data-notifier-bell" not in home and "Sign in" not in home
    client.set_cookie("shop_user", "u-1")
    assert "data-notifier-bell" in client.get("/shop").get_data(as_text=True)


def test_bearer_tokens_still_work_with_a_host_login(
    with_host_login: Flask, database: Database
) -> None:
    token = make_token(database, _admin(database))
    client = with_host_login.test_client()
    answer = client.get(f"{API}/unread-count", headers={"Authorization": f"Bearer {token}"})
    assert answer.json == {"unread_count": 0, "unread_count_exact": True}


# -- Flask-SQLAlchemy: the host's engine and db.session ---------------------------------


class _Base(DeclarativeBase):
    pass


class _Order(_Base):
    __tablename__ = "shop_orders_embedding_test"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))


@pytest.fixture
def sqla_host(database: Database) -> Iterator[tuple[Flask, SQLAlchemy]]:
    app = Flask("shop")
    app.config.update(SECRET_KEY="k", SQLALCHEMY_DATABASE_URI=database.url)
    db = SQLAlchemy(model_class=_Base)
    db.init_app(app)
    NotifierWeb(app, db=db)

    @app.post("/orders/<number>")
    def place(number: str) -> str:
        db.session.add(_Order(number=number))
        from notifier import admin_notification_service

        admin_notification_service.create_notification(
            db_session(), type="system_info", title=f"order {number}", message="placed"
        )
        if request.args.get("fail"):
            abort(500)
        db.session.commit()
        g.done = True
        return "ok"

    with app.app_context():
        _Base.metadata.create_all(db.engine)
    yield app, db
    with app.app_context():
        _Base.metadata.drop_all(db.engine)


def test_a_notification_written_in_a_host_request_shares_its_transaction(
    sqla_host: tuple[Flask, SQLAlchemy], database: Database
) -> None:
    app, db = sqla_host
    client = app.test_client()
    assert client.post("/orders/A-1").status_code == 200
    assert client.post("/orders/B-2?fail=1").status_code == 500
    with app.app_context():
        assert db.session.scalars(select(_Order.number)).all() == ["A-1"]
        assert app.extensions["notifier"].state(app).database.engine is db.engine
    with database.session_scope() as session:
        titles = session.scalars(select(AdminNotification.title)).all()
    assert titles == ["order A-1"]


def test_db_needs_init_app_first(database: Database) -> None:
    app = Flask("shop")
    with pytest.raises(RuntimeError, match=r"db.init_app\(app\)"):
        NotifierWeb(app, db=SQLAlchemy())
