"""Server-side sessions: what ends a login, at once, and what never extends or reuses one."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from notifier.web.auth import SESSION_ID_KEY
from sqlalchemy import func, select

from notifier.accounts.tokens import hash_token
from notifier.accounts.users import deactivate_admin, delete_admin, reactivate_admin, set_password
from notifier.db import Database
from notifier.models import AdminSession, AdminUser
from tests.web.conftest import API, Admin, login, make_admin


def _copy_cookie(app: Flask, source: FlaskClient) -> FlaskClient:
    """A second client holding a copy of ``source``'s cookie, as a thief would."""
    thief = app.test_client()
    cookie = source.get_cookie("notifier_session")
    assert cookie is not None
    thief.set_cookie("notifier_session", cookie.value)
    return thief


def _status(client: FlaskClient) -> int:
    return client.get(f"{API}/unread-count").status_code


def test_a_cookie_copied_before_logout_is_refused_after(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    csrf = login(browser, admin)
    thief = _copy_cookie(app, browser)
    assert _status(thief) == 200
    assert browser.post("/admin/logout", data={"csrf_token": csrf}).status_code == 302
    assert _status(thief) == 401
    page = thief.get("/admin/notifications")
    assert page.status_code == 302 and page.headers["Location"].startswith("/admin/login")
    # and a write with the copied CSRF token is refused too
    assert thief.put(f"{API}/mark-all-read", headers={"X-CSRF-Token": csrf}).status_code == 401


def test_the_cookie_holds_a_random_id_stored_only_hashed(
    app: Flask, admin: Admin, database: Database
) -> None:
    browser = app.test_client()
    login(browser, admin)
    with browser.session_transaction() as session:
        session_id = session[SESSION_ID_KEY]
    assert isinstance(session_id, str) and len(session_id) >= 40
    assert str(admin.id) != session_id
    with database.session_scope() as db:
        stored = db.scalars(select(AdminSession.session_hash)).all()
    assert stored == [hash_token(session_id)]


def test_log_out_everywhere_ends_every_browser(
    app: Flask, admin: Admin, database: Database
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    csrf = login(laptop, admin)
    login(phone, admin)
    other = make_admin(database, "grace@example.com")
    colleague = app.test_client()
    login(colleague, other)
    assert _status(laptop) == _status(phone) == 200
    assert laptop.post("/admin/logout-everywhere").status_code == 403  # CSRF needed
    response = laptop.post("/admin/logout-everywhere", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert _status(laptop) == _status(phone) == 401
    assert _status(colleague) == 200  # someone else's session is not ours to end


def test_deactivating_ends_sessions_and_reactivating_does_not_revive_them(
    app: Flask, admin: Admin, database: Database
) -> None:
    browser = app.test_client()
    login(browser, admin)
    with database.session_scope() as db:
        user = db.get(AdminUser, admin.id)
        assert user is not None
        assert deactivate_admin(db, user) == 1
    assert _status(browser) == 401
    with database.session_scope() as db:
        user = db.get(AdminUser, admin.id)
        assert user is not None
        reactivate_admin(db, user)
    assert _status(browser) == 401  # the old cookie stays dead: log in again
    login(browser, admin)
    assert _status(browser) == 200


def test_a_password_change_ends_every_session(app: Flask, admin: Admin, database: Database) -> None:
    browser = app.test_client()
    login(browser, admin)
    with database.session_scope() as db:
        user = db.get(AdminUser, admin.id)
        assert user is not None
        set_password(db, user, "a brand new passphrase")
    assert _status(browser) == 401
    login(browser, Admin(admin.id, admin.email, "a brand new passphrase"))
    assert _status(browser) == 200


def test_the_lifetime_is_absolute_use_never_extends_it(
    app_config: dict[str, Any], admin: Admin
) -> None:
    app = create_app({**app_config, "NOTIFIER_SESSION_LIFETIME": 2})
    browser = app.test_client()
    login(browser, admin)
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # busy use re-issues the cookie every time
        assert _status(browser) == 200
        time.sleep(0.2)
    time.sleep(max(0.0, 2.3 - (time.monotonic() - started)))
    assert _status(browser) == 401
    app.extensions["notifier"].state(app).database.dispose()


def test_a_deleted_admins_cookie_never_works_for_the_next_admin(
    app: Flask, database: Database
) -> None:
    first = make_admin(database, "first@example.com")
    browser = app.test_client()
    login(browser, first)
    with database.session_scope() as db:
        user = db.get(AdminUser, first.id)
        assert user is not None
        delete_admin(db, user)
    # The next admin may get the same row id on SQLite; the old cookie must not become theirs.
    second = make_admin(database, "second@example.com")
    assert _status(browser) == 401
    with database.session_scope() as db:
        assert db.scalar(select(func.count()).select_from(AdminSession)) == 0
    fresh = app.test_client()
    login(fresh, second)
    assert _status(fresh) == 200


def test_logout_leaves_a_host_apps_session_keys_alone(app: Flask, admin: Admin) -> None:
    @app.get("/host/cart")
    def cart() -> dict[str, Any]:
        from flask import session

        session.setdefault("host_cart", ["sku-1"])
        return {"cart": session["host_cart"]}

    browser = app.test_client()
    assert browser.get("/host/cart").json == {"cart": ["sku-1"]}
    csrf = login(browser, admin)
    with browser.session_transaction() as session:
        assert session["host_cart"] == ["sku-1"]
    browser.post("/admin/logout", data={"csrf_token": csrf})
    with browser.session_transaction() as session:
        assert session["host_cart"] == ["sku-1"]
        assert not [key for key in session if key.startswith("notifier_")]


def test_pages_offer_sign_out_everywhere(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    login(browser, admin)
    html = browser.get("/admin/notifications").get_data(as_text=True)
    assert 'action="/admin/logout-everywhere"' in html
