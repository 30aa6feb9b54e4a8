"""Authentication: login/logout, cookies, CSRF, bearer tokens, throttling, and the auth matrix."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app, current_admin, login_required
from sqlalchemy import update

from notifier.accounts.tokens import find_token, revoke_token
from notifier.db import Database
from notifier.models import AdminUser, ApiToken
from tests.web.conftest import API, Admin, login, make_admin, make_token, page_csrf

BODIES: dict[str, dict[str, Any]] = {
    f"POST {API}": {"type": "system_info", "title": "t", "message": "m"},
    f"POST {API}/alerts": {"alert_type": "system", "severity": "info", "title": "t"},
    f"PUT {API}/alerts/{{alert_id}}/resolve": {"resolution_notes": "n"},
    f"PUT {API}/alerts/{{alert_id}}/snooze": {"until": "2030-01-01T00:00:00Z"},
    f"POST {API}/endpoints": {"name": "e", "channel": "webhook", "url": "https://hooks.example/"},
    f"PATCH {API}/endpoints/{{endpoint_id}}": {"name": "renamed"},
    f"POST {API}/deliveries/replay-failed": {"since": "2026-01-01T00:00:00Z"},
    f"PUT {API}/preferences": {"time_zone": "Europe/Berlin"},
}


def _routes(api: FlaskClient) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every API operation from the OpenAPI document, with real ids and valid bodies."""
    note = api.post(API, json=BODIES[f"POST {API}"]).json["id"]
    alert = api.post(f"{API}/alerts", json=BODIES[f"POST {API}/alerts"]).json["id"]
    endpoint = api.post(f"{API}/endpoints", json=BODIES[f"POST {API}/endpoints"]).json["id"]
    delivery = api.post(f"{API}/endpoints/{endpoint}/test").json["deliveries"][0]["id"]
    ids = {"notification_id": note, "alert_id": alert, "endpoint_id": endpoint}
    ids["delivery_id"] = delivery
    document = api.get(f"{API}/openapi.json").json
    routes: list[tuple[str, str, dict[str, Any] | None]] = [("GET", f"{API}/openapi.json", None)]
    for path, operations in document["paths"].items():
        for method in operations:
            body = BODIES.get(f"{method.upper()} {path}")
            url = path
            for name, value in ids.items():
                url = url.replace(f"{{{name}}}", str(value))
            routes.append((method.upper(), url, body))
    assert len(routes) == 45  # 44 operations (the event stream too) and the document itself
    return routes


def _assert_error(response: Any, status: int) -> None:
    assert response.status_code == status, (response.request.path, response.json)
    assert response.mimetype == "application/json"
    assert set(response.json["error"]) == {"code", "message", "details"}


def test_auth_matrix(app: Flask, api: FlaskClient, admin: Admin, database: Database) -> None:
    revoked = make_token(database, admin, name="old")
    with database.session_scope() as db:
        revoke_token(db, find_token(db, revoked[:12]))
    browser = app.test_client()
    login(browser, admin)
    anonymous = app.test_client()

    for method, url, body in _routes(api):
        kwargs: dict[str, Any] = {"method": method, "json": body}
        _assert_error(anonymous.open(url, **kwargs), 401)
        for bad in ("Bearer ntf_not-a-real-token", f"Bearer {revoked}", "Basic YTpi", "Bearer"):
            _assert_error(anonymous.open(url, headers={"Authorization": bad}, **kwargs), 401)
        if method != "GET":
            _assert_error(browser.open(url, **kwargs), 403)
            wrong = {"X-CSRF-Token": "forged"}
            _assert_error(browser.open(url, headers=wrong, **kwargs), 403)


def test_401_names_how_to_authenticate(client: FlaskClient) -> None:
    response = client.get(f"{API}/unread-count")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"]["code"] == "unauthorized"


def test_cookie_reads_need_no_csrf_and_writes_do(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    csrf = login(browser, admin)
    assert browser.get(f"{API}/unread-count").json == {
        "unread_count": 0,
        "unread_count_exact": True,
    }
    response = browser.put(f"{API}/mark-all-read")
    assert response.status_code == 403 and response.json["error"]["code"] == "csrf_failed"
    response = browser.put(f"{API}/mark-all-read", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200


def test_session_cookie_flags(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    csrf = page_csrf(browser)
    response = browser.post(
        "/admin/login",
        data={"email": admin.email, "password": admin.password, "csrf_token": csrf},
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_secure_cookie_when_configured(app_config: dict[str, Any], admin: Admin) -> None:
    app = create_app({**app_config, "SESSION_COOKIE_SECURE": True})
    browser = app.test_client()
    csrf = page_csrf(browser)
    response = browser.post(
        "/admin/login",
        base_url="https://localhost",
        data={"email": admin.email, "password": admin.password, "csrf_token": csrf},
    )
    assert "Secure" in response.headers["Set-Cookie"]
    app.extensions["notifier"].state(app).database.dispose()


def test_login_redirects_to_next_only_inside_the_app(app: Flask, admin: Admin) -> None:
    for target, expected in [
        ("/admin/notifications?tab=alerts", "/admin/notifications?tab=alerts"),
        ("https://evil.example/", "/admin/notifications"),
        ("//evil.example/", "/admin/notifications"),
        ("/\\evil.example", "/admin/notifications"),
        ("javascript:alert(1)", "/admin/notifications"),
    ]:
        browser = app.test_client()
        csrf = page_csrf(browser)
        response = browser.post(
            "/admin/login",
            query_string={"next": target},
            data={"email": admin.email, "password": admin.password, "csrf_token": csrf},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == expected


def test_wrong_password_and_missing_csrf(client: FlaskClient, admin: Admin) -> None:
    csrf = page_csrf(client)
    response = client.post(
        "/admin/login", data={"email": admin.email, "password": "nope", "csrf_token": csrf}
    )
    assert response.status_code == 401 and b"Wrong email or password" in response.data
    response = client.post("/admin/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get(f"{API}/unread-count").status_code == 401


PASSWORD = "correct horse battery"


def test_failed_logins_are_throttled(app_config: dict[str, Any], admin: Admin) -> None:
    app = create_app({**app_config, "NOTIFIER_LOGIN_ATTEMPTS": 3})
    browser = app.test_client()
    csrf = page_csrf(browser)
    form = {"email": admin.email, "password": "wrong", "csrf_token": csrf}
    statuses = [browser.post("/admin/login", data=form).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Even the right password waits until the window has passed.
    response = browser.post("/admin/login", data={**form, "password": admin.password})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    app.extensions["notifier"].state(app).database.dispose()


def test_bad_tokens_are_throttled_per_client(
    app_config: dict[str, Any], database: Database, admin: Admin
) -> None:
    app = create_app({**app_config, "NOTIFIER_AUTH_FAILURES_PER_IP": 3})
    client = app.test_client()
    bad = {"Authorization": "Bearer ntf_guess"}
    statuses = [client.get(f"{API}/unread-count", headers=bad).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    response = client.get(f"{API}/unread-count", headers=bad)
    assert response.json["error"]["code"] == "too_many_requests"
    assert "Retry-After" in response.headers
    # a valid token from the same address is never locked out by someone else's guesses
    good = {"Authorization": f"Bearer {make_token(database, admin)}"}
    assert client.get(f"{API}/unread-count", headers=good).status_code == 200
    app.extensions["notifier"].state(app).database.dispose()


def test_logout_is_a_post_with_csrf(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    csrf = login(browser, admin)
    assert browser.get("/admin/logout").status_code == 405
    assert browser.post("/admin/logout").status_code == 403
    assert browser.get(f"{API}/unread-count").status_code == 200
    response = browser.post("/admin/logout", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert browser.get(f"{API}/unread-count").status_code == 401


def test_login_starts_a_fresh_session(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    before = page_csrf(browser)
    after = login(browser, admin)
    assert before != after


def test_deactivated_admin_loses_access_at_once(
    app: Flask, admin: Admin, token: str, database: Database
) -> None:
    browser = app.test_client()
    login(browser, admin)
    bearer = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get(f"{API}/unread-count", headers=bearer).status_code == 200
    assert browser.get(f"{API}/unread-count").status_code == 200
    with database.session_scope() as db:
        db.execute(update(AdminUser).values(is_active=False))
    assert client.get(f"{API}/unread-count", headers=bearer).status_code == 401
    assert browser.get(f"{API}/unread-count").status_code == 401


def test_revoked_token_is_refused_and_others_keep_working(
    app: Flask, admin: Admin, token: str, database: Database
) -> None:
    other = make_token(database, admin, name="other")
    client = app.test_client()
    with database.session_scope() as db:
        revoke_token(db, find_token(db, token[:12]))
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get(API, headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_tokens_are_stored_hashed_and_record_use(
    app: Flask, token: str, database: Database
) -> None:
    app.test_client().get(API, headers={"Authorization": f"Bearer {token}"})
    with database.session_scope() as db:
        row = db.query(ApiToken).one()
        assert token not in (row.token_hash, row.prefix, row.name)
        assert len(row.token_hash) == 64 and token.startswith(row.prefix)
        assert row.last_used_at is not None


def test_a_bad_token_is_not_rescued_by_the_cookie(app: Flask, admin: Admin) -> None:
    browser = app.test_client()
    login(browser, admin)
    response = browser.get(f"{API}/unread-count", headers={"Authorization": "Bearer ntf_x"})
    assert response.status_code == 401


def test_security_headers(client: FlaskClient) -> None:
    for response in (client.get("/admin/login"), client.get(API)):
        csp = response.headers["Content-Security-Policy"]
        script_src = next(part for part in csp.split(";") if "script-src" in part)
        assert "'unsafe-inline'" not in script_src and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_login_page_carries_csrf_meta_and_no_inline_script(client: FlaskClient) -> None:
    html = client.get("/admin/login").get_data(as_text=True)
    assert '<meta name="csrf-token" content="' in html
    assert "<script" not in html and "onclick" not in html
    assert client.get("/admin/static/notifier/notifier.css").status_code == 200


def test_login_required_redirects_pages_to_login(app: Flask, admin: Admin) -> None:
    @app.route("/admin/test-page")
    @login_required
    def test_page() -> str:
        user = current_admin()
        assert user is not None
        return f"hello {user.email}"

    browser = app.test_client()
    response = browser.get("/admin/test-page?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/test-page?x%3D1"
    login(browser, admin, next_url="/admin/test-page?x=1")
    assert browser.get("/admin/test-page").get_data(as_text=True) == f"hello {admin.email}"


@pytest.mark.parametrize("email", ["ADMIN@example.com", " admin@example.com "])
def test_login_email_is_case_insensitive(app: Flask, admin: Admin, email: str) -> None:
    login(app.test_client(), Admin(admin.id, email, admin.password))


def test_second_admin_marks_as_themselves(app: Flask, api: FlaskClient, database: Database) -> None:
    other = make_admin(database, "bob@example.com")
    other_token = make_token(database, other)
    note = api.post(API, json=BODIES[f"POST {API}"]).json
    response = app.test_client().put(
        f"{API}/{note['id']}/read", headers={"Authorization": f"Bearer {other_token}"}
    )
    assert response.json["read_by_user_id"] == other.id


def test_login_throttle_per_address_spans_emails(app_config: dict[str, Any], admin: Admin) -> None:
    app = create_app({**app_config, "NOTIFIER_LOGIN_ATTEMPTS": 2})
    browser = app.test_client()
    csrf = page_csrf(browser)
    statuses = [
        browser.post(
            "/admin/login",
            data={"email": f"user{i}@example.com", "password": "x", "csrf_token": csrf},
        ).status_code
        for i in range(9)
    ]
    assert statuses == [401] * 8 + [429]  # 4 x 2 failures from one address, any emails
    app.extensions["notifier"].state(app).database.dispose()


def test_behind_a_trusted_proxy_clients_are_throttled_apart(app_config: dict[str, Any]) -> None:
    app = create_app(
        {**app_config, "NOTIFIER_AUTH_FAILURES_PER_IP": 2, "NOTIFIER_TRUSTED_PROXIES": 1}
    )
    client = app.test_client()
    bad = {"Authorization": "Bearer ntf_guess", "X-Forwarded-For": "203.0.113.7"}
    statuses = [client.get(f"{API}/unread-count", headers=bad).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    other = {"Authorization": "Bearer ntf_guess", "X-Forwarded-For": "198.51.100.9"}
    assert client.get(f"{API}/unread-count", headers=other).status_code == 401
    app.extensions["notifier"].state(app).database.dispose()
