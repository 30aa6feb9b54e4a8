"""The page behind an alert message's action links: a GET shows, a POST acts, once.

Links come from a real email (the aiosmtpd sink) where it matters; the refusals sign their
own tokens. Every refusal leaves the alert as it was and records no use.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from sqlalchemy import func, select

from notifier import Database, platform_alert_service
from notifier.accounts.users import deactivate_admin
from notifier.actions import ACTION_LINK_LIFETIME, action_key, sign_action
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.endpoints import endpoint_service
from notifier.delivery.mail import SmtpSettings
from notifier.models import ActionUse, AdminUser, PlatformAlert
from notifier.outbox import ensure_default_email_endpoint
from notifier.types import utcnow
from tests.receivers import MailSink
from tests.web.conftest import API, Admin, login, make_admin

BASE = "https://admin.shop.example"


def _alert(database: Database, title: str = "Orders <b>DB</b> down") -> int:
    with database.session_scope() as db:
        alert, _ = platform_alert_service.create_or_increment_alert(
            db, alert_type="database", severity="critical", title=title
        )
        return alert.id


def _link(database: Database, alert_id: int, action: str, source: str, to: int, **kw: Any) -> str:
    with database.session_scope() as db:
        token = sign_action(
            action_key(db), alert_id, action, source, to, now=kw.get("now", utcnow())
        )
    return f"/admin/act/{token}"


def _state(database: Database, alert_id: int) -> tuple[Any, ...]:
    with database.session_scope() as db:
        alert = db.get(PlatformAlert, alert_id)
        assert alert is not None
        uses = db.scalar(select(func.count()).select_from(ActionUse))
        return (
            alert.acknowledged_at,
            alert.acknowledged_by_user_id,
            alert.acknowledged_via,
            alert.snoozed_until,
            alert.is_resolved,
            uses,
        )


UNTOUCHED = (None, None, None, None, False, 0)


def _confirm(client: FlaskClient, path: str, **form: str) -> Any:
    return client.post(path, data={"token": path.rsplit("/", 1)[1], **form})


def test_acknowledge_from_a_real_email_once_without_a_session(
    client: FlaskClient,
    api: FlaskClient,
    database: Database,
    admin: Admin,
    smtp_server: tuple[str, MailSink],
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        ensure_default_email_endpoint(db)
    alert_id = _alert(database)
    settings = DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"), base_url=BASE
    )
    assert dispatch_due(database, settings).counts == {"succeeded": 1}
    [email] = sink.to(admin.email)
    text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(rf"^Acknowledge: {re.escape(BASE)}(/admin/act/\S+)", text, re.M)
    assert match, text
    path = match.group(1)

    # A mail scanner's GET (or the admin's) changes nothing; the page says what will happen.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert "Orders &lt;b&gt;DB&lt;/b&gt; down" in body  # escaped
        assert "acknowledge this alert" in body and admin.email in body
        assert 'method="post"' in body
    assert _state(database, alert_id) == UNTOUCHED

    done = _confirm(client, path)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "acknowledged this alert" in done.get_data(as_text=True)
    acknowledged_at, by, via, snoozed, resolved, uses = _state(database, alert_id)
    assert acknowledged_at is not None and (by, via, snoozed, resolved, uses) == (
        admin.id,
        "email",
        None,
        False,
        1,
    )
    shown = api.get(f"{API}/alerts/{alert_id}").json
    assert shown["acknowledged_by_user_id"] == admin.id and shown["acknowledged_via"] == "email"

    # Used: refused from now on, GET or POST.
    assert client.get(path).status_code == 410
    assert "used already" in _confirm(client, path).get_data(as_text=True)


def test_snooze_and_resolve_links(client: FlaskClient, database: Database, admin: Admin) -> None:
    alert_id = _alert(database)
    assert (
        _confirm(client, _link(database, alert_id, "snooze", "email", admin.id)).status_code == 200
    )
    with database.session_scope() as db:
        alert = db.get(PlatformAlert, alert_id)
        assert alert is not None and alert.snoozed_until is not None
        assert timedelta(minutes=59) < alert.snoozed_until - utcnow() <= timedelta(hours=1)
    resolve = _link(database, alert_id, "resolve", "email", admin.id)
    assert "Resolution notes" in client.get(resolve).get_data(as_text=True)
    assert _confirm(client, resolve, notes="restarted the primary").status_code == 200
    with database.session_scope() as db:
        alert = db.get(PlatformAlert, alert_id)
        assert alert is not None and alert.is_resolved
        assert (alert.resolved_by_user_id, alert.resolution_notes) == (
            admin.id,
            "restarted the primary",
        )
        assert alert.acknowledged_at is None
    # Any other link to a resolved alert has nothing left to do.
    late = _link(database, alert_id, "acknowledge", "email", admin.id)
    assert client.get(late).status_code == 409 and _confirm(client, late).status_code == 409


def test_refused_links_change_nothing(
    app: Flask, client: FlaskClient, database: Database, admin: Admin
) -> None:
    alert_id = _alert(database)
    other = make_admin(database, "other@example.com")
    ack = _link(database, alert_id, "acknowledge", "email", admin.id)

    # Signed in as another admin: this link is not theirs.
    someone = app.test_client()
    login(someone, other)
    assert someone.get(ack).status_code == 403
    refused = _confirm(someone, ack)
    assert refused.status_code == 403 and "another admin" in refused.get_data(as_text=True)
    # Expired.
    old = utcnow() - ACTION_LINK_LIFETIME - timedelta(hours=1)
    expired = _link(database, alert_id, "acknowledge", "email", admin.id, now=old)
    assert client.get(expired).status_code == 410
    assert _confirm(client, expired).status_code == 410
    # A tampered signature, and another alert's id under this signature.
    payload, signature = ack.rsplit(".", 1)
    for forged in (f"{payload}.{signature[:-2]}AA", f"{payload}X.{signature}", "/admin/act/x"):
        assert client.get(forged).status_code == 404
        assert _confirm(client, forged).status_code == 404
    # A cross-site POST: it cannot put the token in its body without knowing it.
    assert client.post(ack).status_code == 403
    assert client.post(ack, data={"token": "guess"}).status_code == 403
    assert _state(database, alert_id) == UNTOUCHED
    # Inactive admin.
    with database.session_scope() as db:
        deactivate_admin(db, db.get(AdminUser, admin.id))  # type: ignore[arg-type]
    assert client.get(ack).status_code == 403
    assert _confirm(client, ack).status_code == 403
    assert _state(database, alert_id) == UNTOUCHED


def test_a_chat_link_asks_whoever_confirms_to_sign_in(
    app: Flask, database: Database, admin: Admin
) -> None:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db, name="ops", channel="slack", url="https://hooks.slack.com/services/T/B/x"
        )
        endpoint_id = endpoint.id
    alert_id = _alert(database)
    path = _link(database, alert_id, "acknowledge", "slack", endpoint_id)
    browser = app.test_client()
    first = browser.get(path)
    assert first.status_code == 302 and "/admin/login" in first.headers["Location"]
    assert _confirm(browser, path).status_code == 302
    csrf = login(browser, admin, next_url=path)
    assert admin.email in browser.get(path).get_data(as_text=True)
    assert _confirm(browser, path).status_code == 403  # signed in: the CSRF token too
    assert _state(database, alert_id) == UNTOUCHED
    assert _confirm(browser, path, csrf_token=csrf).status_code == 200
    _, by, via, *_ = _state(database, alert_id)
    assert (by, via) == (admin.id, "slack")


def test_bad_links_are_throttled_per_address(
    app_config: dict[str, Any], database: Database, admin: Admin
) -> None:
    # Few bad tokens allowed per address (shared with bad API tokens), to see the throttle.
    app = create_app(app_config | {"NOTIFIER_AUTH_FAILURES_PER_IP": 3})
    client = app.test_client()
    alert_id = _alert(database)
    good = _link(database, alert_id, "acknowledge", "email", admin.id)
    for n in range(3):
        assert client.get(f"/admin/act/forged{n}").status_code == 404
    throttled = client.get(good)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert _confirm(client, good).status_code == 429
    assert _state(database, alert_id) == UNTOUCHED
    app.extensions["notifier"].state(app).database.dispose()


def test_notes_too_long_or_an_earlier_acknowledgment_are_said_not_hidden(
    client: FlaskClient, api: FlaskClient, database: Database, admin: Admin
) -> None:
    alert_id = _alert(database)
    resolve = _link(database, alert_id, "resolve", "email", admin.id)
    refused = _confirm(client, resolve, notes="x" * 10_001)
    assert refused.status_code == 422
    assert "resolution notes must be at most" in refused.get_data(as_text=True)
    assert _state(database, alert_id) == UNTOUCHED  # and the link still works once

    assert api.put(f"{API}/alerts/{alert_id}/acknowledge").json["acknowledged_via"] == "web"
    late = _confirm(client, _link(database, alert_id, "acknowledge", "email", admin.id))
    assert late.status_code == 200
    assert "acknowledged already; the first acknowledgment is kept" in late.get_data(as_text=True)
    _, by, via, *_ = _state(database, alert_id)
    assert (by, via) == (admin.id, "web")
    assert _confirm(client, resolve, notes="fixed").status_code == 200
