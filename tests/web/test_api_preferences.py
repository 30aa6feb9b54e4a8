"""The preferences API (the signed-in admin's own) and the one-click unsubscribe link that a
real email carries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from notifier import Database, admin_notification_service
from notifier.accounts.users import deactivate_admin
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.delivery.unsubscribe import UNSUBSCRIBE_LINK_LIFETIME, sign
from notifier.models import AdminUser
from notifier.outbox import ensure_default_email_endpoint
from notifier.preferences.store import preferences_document
from tests.receivers import MailSink
from tests.web.conftest import API, Admin, make_admin

PREFS = f"{API}/preferences"
DOCUMENT: dict[str, Any] = {
    "channels": {"in_app": True, "email": True},
    "rules": {"email": {"notification:store_issue": {"mode": "digest", "min_level": "high"}}},
    "time_zone": "America/New_York",
    "quiet_hours": [{"days": [5, 6], "start": "00:00", "end": "00:00"}],
    "digest": {"frequency": "daily", "hour": 18},
}


def test_get_gives_the_defaults_and_the_locked_categories(api: FlaskClient) -> None:
    response = api.get(PREFS)
    assert response.status_code == 200
    body = response.json
    assert body["channels"] == {"in_app": True, "email": True}
    assert body["rules"]["in_app"]["alert:database"] == {"mode": "immediate", "min_level": None}
    locked = {c["key"]: c["locked_at"] for c in body["categories"]}
    assert locked["notification:security_alert"] == "critical"
    assert locked["notification:critical_error"] == "critical"
    assert locked["alert:capacity"] == "critical"
    assert locked["notification:import_failure"] is None


def test_put_replaces_the_document_for_this_admin_only(
    api: FlaskClient, database: Database, admin: Admin
) -> None:
    other = make_admin(database, "other@example.com")
    response = api.put(PREFS, json=DOCUMENT)
    assert response.status_code == 200, response.json
    saved = api.get(PREFS).json
    assert saved["rules"]["email"]["notification:store_issue"] == {
        "mode": "digest",
        "min_level": "high",
    }
    assert saved["quiet_hours"] == DOCUMENT["quiet_hours"]
    assert saved["digest"] == {"frequency": "daily", "hour": 18}
    assert saved["time_zone"] == "America/New_York"
    with database.session_scope() as db:
        assert preferences_document(db, other.id)["time_zone"] == "UTC"
    # A part left out takes its default: the whole document is replaced.
    assert api.put(PREFS, json={"time_zone": "Asia/Tokyo"}).status_code == 200
    again = api.get(PREFS).json
    assert again["digest"]["frequency"] == "off" and again["quiet_hours"] == []


def test_bad_documents_get_the_json_error_shape(api: FlaskClient) -> None:
    cases = [
        ({"rules": {"in_app": {"alert:database": {"mode": "digest"}}}}, "rules"),
        ({"rules": {"email": {"alert:database": {"mode": "off", "min_level": "high"}}}}, "rules"),
        ({"rules": {"email": {"notification:nope": {"mode": "off"}}}}, "rules"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"quiet_hours": [{"days": [7], "start": "22:00", "end": "07:00"}]}, "quiet_hours"),
        ({"quiet_hours": [{"days": [1], "start": "25:00", "end": "07:00"}]}, "quiet_hours"),
        ({"digest": {"frequency": "daily", "hour": "8"}}, "digest"),
        ({"volume": 11}, "volume"),
    ]
    for document, field in cases:
        response = api.put(PREFS, json=document)
        assert response.status_code == 422, (document, response.json)
        assert response.json["error"]["code"] == "validation_error"
        assert field in response.json["error"]["details"], response.json
    assert api.put(PREFS, data="{", content_type="application/json").status_code == 400


def test_cookie_writes_need_the_csrf_token_and_anonymous_callers_none_of_it(
    client: FlaskClient, browser: tuple[FlaskClient, str]
) -> None:
    assert client.get(PREFS).status_code == 401
    session, csrf = browser
    assert session.put(PREFS, json=DOCUMENT).status_code == 403
    response = session.put(PREFS, json=DOCUMENT, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200


def _unsubscribe_link(message: Any) -> str:
    header = str(message["List-Unsubscribe"])
    match = re.fullmatch(r"<https://admin\.shop\.example(/admin/unsubscribe/[^>]+)>", header)
    assert match, header
    return match.group(1)


def test_a_locked_category_cannot_be_turned_off(
    api: FlaskClient, client: FlaskClient, database: Database, admin: Admin
) -> None:
    off = {"mode": "off", "min_level": None}
    document = {
        "rules": {
            "email": {"alert:database": off, "notification:store_issue": off},
            "in_app": {"notification:security_alert": off},
        }
    }
    response = api.put(PREFS, json=document)
    assert response.status_code == 422, response.json
    details = response.json["error"]["details"]
    # Each locked row is named; the unlocked one set off is fine.
    assert set(details) == {
        "rules.email.alert:database.mode",
        "rules.in_app.notification:security_alert.mode",
    }
    assert "locked at critical" in details["rules.email.alert:database.mode"]
    assert api.get(PREFS).json["rules"]["email"]["notification:store_issue"]["mode"] == "immediate"
    # What the page offers on a locked row instead: only the required ones.
    only_critical = {"mode": "immediate", "min_level": "critical"}
    allowed = {"rules": {"email": {"alert:database": only_critical}}}
    assert api.put(PREFS, json=allowed).status_code == 200
    assert api.get(PREFS).json["rules"]["email"]["alert:database"] == only_critical
    # An unsubscribe link for a locked category sets the same, so the document an admin
    # reads back always saves.
    assert api.put(PREFS, json={}).status_code == 200
    with database.session_scope() as db:
        token = sign(db, admin.id, "alert:integration")
    assert client.post(f"/admin/unsubscribe/{token}").status_code == 200
    saved = api.get(PREFS).json
    assert saved["rules"]["email"]["alert:integration"] == only_critical
    del saved["categories"]
    assert api.put(PREFS, json=saved).status_code == 200


def test_one_click_unsubscribe_from_a_real_email(
    client: FlaskClient,
    database: Database,
    admin: Admin,
    smtp_server: tuple[str, MailSink],
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        ensure_default_email_endpoint(db).min_priority = None
    settings = DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"),
        base_url="https://admin.shop.example",
    )

    def notify(**fields: Any) -> None:
        with database.session_scope() as db:
            admin_notification_service.create_notification(
                db, **{"type": "store_issue", "title": "Store down", "message": "m"} | fields
            )
        dispatch_due(database, settings, limit=100)

    notify()
    notify(type="security_alert", priority="critical", title="Breach")
    first, required = sink.to(admin.email)
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert required["List-Unsubscribe"] is None  # required: cannot be turned off
    path = _unsubscribe_link(first)
    page = client.get(path)
    assert page.status_code == 200
    assert "Stop sending emails about store issue notifications" in page.get_data(as_text=True)
    # What a mail client does on one click (RFC 8058): a POST with this body, no cookie.
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "will no longer receive" in done.get_data(as_text=True)
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and "already the case" in again.get_data(as_text=True)
    with database.session_scope() as db:
        rule = preferences_document(db, admin.id)["rules"]["email"]["notification:store_issue"]
    assert rule["mode"] == "off"
    notify(title="Store down again")
    notify(type="critical_error", priority="critical", title="Still required")
    assert [m["Subject"] for m in sink.to(admin.email)][2:] == [
        "[CRITICAL] critical_error: Still required"
    ]


def test_forged_or_tampered_links_change_nothing(
    client: FlaskClient, database: Database, admin: Admin
) -> None:
    with database.session_scope() as db:
        token = sign(db, admin.id, "alert:database")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for path in (f"/admin/unsubscribe/{tampered}", "/admin/unsubscribe/not-a-token"):
        response = client.post(path)
        assert response.status_code == 404
        assert "not valid" in response.get_data(as_text=True)
    with database.session_scope() as db:
        document = preferences_document(db, admin.id)
    assert document["rules"]["email"]["alert:database"]["mode"] == "immediate"


def test_a_link_older_than_its_lifetime_shows_it_expired_and_changes_nothing(
    client: FlaskClient, database: Database, admin: Admin
) -> None:
    issued = datetime.now(UTC) - UNSUBSCRIBE_LINK_LIFETIME - timedelta(days=1)
    with database.session_scope() as db:
        old = sign(db, admin.id, "alert:database", now=issued)
        recent = sign(db, admin.id, "alert:database", now=issued + timedelta(days=2))
    for method in (client.get, client.post):
        response = method(f"/admin/unsubscribe/{old}")
        assert response.status_code == 410
        assert "expired" in response.get_data(as_text=True)
    with database.session_scope() as db:
        document = preferences_document(db, admin.id)
    assert document["rules"]["email"]["alert:database"]["mode"] == "immediate"
    assert client.post(f"/admin/unsubscribe/{recent}").status_code == 200


def test_a_link_of_a_deactivated_admin_is_refused(
    client: FlaskClient, database: Database, admin: Admin
) -> None:
    with database.session_scope() as db:
        token = sign(db, admin.id, "alert:database")
        user = db.get(AdminUser, admin.id)
        assert user is not None
        deactivate_admin(db, user)
    for method in (client.get, client.post):
        response = method(f"/admin/unsubscribe/{token}")
        assert response.status_code == 403
        page = response.get_data(as_text=True)
        assert "deactivated" in page and admin.email not in page
    with database.session_scope() as db:
        document = preferences_document(db, admin.id)
    assert document["rules"]["email"]["alert:database"]["mode"] == "immediate"
