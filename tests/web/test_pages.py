"""The admin pages as the server renders them (the browser tests drive the same pages)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from notifier import Database, admin_notification_service, platform_alert_service
from tests.web.conftest import Admin, login

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_pages_redirect_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/admin/notifications?tab=alerts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")
    assert "tab%3Dalerts" in response.headers["Location"]
    assert client.get("/admin/").status_code == 302


def test_login_goes_back_to_next_but_never_off_site(client: FlaskClient, admin: Admin) -> None:
    login(client, admin, next_url="/admin/notifications?tab=alerts")
    client.post("/admin/logout", data={})  # no CSRF token: refused, still logged in
    assert client.get("/admin/notifications").status_code == 200
    other = client.application.test_client()
    csrf_page = other.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', csrf_page)
    assert csrf
    response = other.post(
        "/admin/login?next=//evil.example/x",
        data={"email": admin.email, "password": admin.password, "csrf_token": csrf.group(1)},
    )
    assert response.headers["Location"] == "/admin/notifications"


def test_page_shows_stats_tabs_and_rows(
    client: FlaskClient, admin: Admin, database: Database
) -> None:
    with database.session_scope() as db:
        for i in range(3):
            admin_notification_service.notify_import_failure(
                db, store_name=f"Store {i}", job_id=i, error_message="bad", store_id=i
            )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="capacity", severity="critical", title="Worker killed"
        )
    login(client, admin)
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert re.search(r'data-stat="unread">.*?nt-card__value">3<', html, re.S)
    assert re.search(r'data-stat="critical">.*?nt-card__value">1<', html, re.S)
    assert html.count('class="nt-row nt-prio-high') == 3
    assert "<svg" in html and "Notifications per day, last 14 days" in html
    alerts = client.get("/admin/notifications?tab=alerts").get_data(as_text=True)
    assert "Worker killed" in alerts and "1 occurrence" in alerts
    assert 'aria-current="page">Platform Alerts' in alerts


def test_filters_narrow_the_list_and_bad_values_are_explained(
    client: FlaskClient, admin: Admin, database: Database
) -> None:
    with database.session_scope() as db:
        admin_notification_service.create_notification(
            db, type="system_info", title="Low one", message="m", priority="low"
        )
        admin_notification_service.create_notification(
            db, type="critical_error", title="Critical one", message="m", priority="critical"
        )
    login(client, admin)
    html = client.get("/admin/notifications?priority=critical").get_data(as_text=True)
    assert "Critical one" in html and "Low one" not in html
    html = client.get("/admin/notifications?priority=bogus").get_data(as_text=True)
    assert "Ignored unknown priority" in html and "Low one" in html


def test_hostile_strings_are_escaped(client: FlaskClient, admin: Admin, database: Database) -> None:
    with database.session_scope() as db:
        admin_notification_service.create_notification(
            db,
            type="system_info",
            title=XSS[:200],
            message=XSS,
            metadata={"payload": XSS},
        )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="info", title=XSS[:200], description=XSS
        )
    login(client, admin)
    for tab in ("notifications", "alerts"):
        response = client.get(f"/admin/notifications?tab={tab}")
        html = response.get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
        assert (
            "'unsafe-inline'"
            not in response.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
        )
        assert "<script>" not in re.sub(r'<script type="module" src="[^"]+"></script>', "", html)


def test_stray_query_parameters_do_not_break_the_page(
    client: FlaskClient, admin: Admin, database: Database
) -> None:
    with database.session_scope() as db:
        for i in range(30):
            admin_notification_service.create_notification(
                db, type="system_info", title=f"n{i}", message="m"
            )
    login(client, admin)
    response = client.get("/admin/notifications?_method=x&_external=1&utm=y&priority=normal")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "page=2" in html and "_external" not in html and "utm" not in html
