"""Act from an email: the sink's message, its "Acknowledge" link opened in chromium with no
session, confirmed on the page, and the alert acknowledged by the email's admin."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from notifier import Database, platform_alert_service
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.mail import SmtpSettings
from notifier.models import PlatformAlert
from notifier.outbox import ensure_default_email_endpoint
from tests.receivers import MailSink
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin

pytestmark = pytest.mark.browser
TITLE = "Primary database unreachable"


def test_acknowledge_from_an_email_link(
    page: Page,
    live: LiveServer,
    admin: Admin,
    database: Database,
    smtp_server: tuple[str, MailSink],
) -> None:
    url, sink = smtp_server
    with database.session_scope() as db:
        ensure_default_email_endpoint(db)
        alert, _ = platform_alert_service.create_or_increment_alert(
            db, alert_type="database", severity="critical", title=TITLE
        )
        alert_id = alert.id
    settings = DispatchSettings(
        smtp=SmtpSettings.from_url(url, sender="notifier@shop.example"), base_url=live.url
    )
    assert dispatch_due(database, settings).counts == {"succeeded": 1}
    [email] = sink.to(admin.email)
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    match = re.search(r'<a href="([^"]+/admin/act/[^"]+)">Acknowledge</a>', html)
    assert match, html

    page.goto(match.group(1))  # no session: the link is the credential
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(page.get_by_text("acknowledge this alert")).to_be_visible()
    expect(page.get_by_text(admin.email)).to_be_visible()
    shoot(page, "action-confirm")
    with database.session_scope() as db:  # opening the page changed nothing
        unchanged = db.get(PlatformAlert, alert_id)
        assert unchanged is not None and unchanged.acknowledged_at is None
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_contain_text("acknowledged this alert, from an email")

    with database.session_scope() as db:
        acknowledged = db.get(PlatformAlert, alert_id)
        assert acknowledged is not None and acknowledged.acknowledged_at is not None
        assert acknowledged.acknowledged_by_user_id == admin.id
        assert acknowledged.acknowledged_via == "email"
    page.goto(match.group(1))  # the link worked once
    expect(page.get_by_role("alert")).to_contain_text("used already")

    sign_in(page, live, admin, "/admin/notifications?tab=alerts")
    badge = page.locator(".nt-row", has_text=TITLE).locator("[data-acknowledged]")
    expect(badge).to_contain_text("Acknowledged by Ada from email")
