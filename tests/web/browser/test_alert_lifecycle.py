"""Acknowledge and snooze in the alerts tab, in a real browser (chromium driven by Playwright)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from notifier import Database, platform_alert_service
from notifier.models import PlatformAlert
from notifier.types import utcnow
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin

pytestmark = pytest.mark.browser
TITLE = "Primary database unreachable"


def _seed(database: Database) -> None:
    with database.session_scope() as db:
        platform_alert_service.create_or_increment_alert(
            db, alert_type="database", severity="critical", title=TITLE
        )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="integration", severity="warning", title="Letzshop slow"
        )


def _alert(database: Database) -> PlatformAlert:
    with database.session_scope() as db:
        alert = db.scalars(select(PlatformAlert).where(PlatformAlert.title == TITLE)).one()
        db.expunge(alert)
        return alert


def test_acknowledge_then_unacknowledge(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    _seed(database)
    sign_in(page, live, admin, "/admin/notifications?tab=alerts")
    row = page.locator(".nt-row", has_text=TITLE)
    row.get_by_role("button", name="Acknowledge", exact=True).click()
    badge = page.locator(".nt-row", has_text=TITLE).locator("[data-acknowledged]")
    expect(badge).to_contain_text("Acknowledged by Ada")
    expect(page.locator('[data-stat="active"] .nt-card__value')).to_have_text("2")
    acknowledged = _alert(database)
    assert acknowledged.acknowledged_by_user_id == admin.id
    shoot(page, "alert-acknowledged")
    page.locator(".nt-row", has_text=TITLE).get_by_role("button", name="Unacknowledge").click()
    expect(
        page.locator(".nt-row", has_text=TITLE).get_by_role(
            "button", name="Acknowledge", exact=True
        )
    ).to_be_visible()
    expect(page.locator("[data-acknowledged]")).to_have_count(0)
    assert _alert(database).acknowledged_at is None


def test_snooze_for_four_hours_hides_it_then_only_snoozed_shows_it_and_unsnooze(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    _seed(database)
    sign_in(page, live, admin, "/admin/notifications?tab=alerts")
    expect(page.locator('[data-stat="critical"] .nt-card__value')).to_have_text("1")
    page.locator(".nt-row", has_text=TITLE).get_by_role("button", name="Snooze", exact=True).click()
    dialog = page.locator("#nt-snooze")
    expect(dialog).to_be_visible()
    dialog.get_by_label("4 hours").check()
    shoot(page, "snooze-dialog")
    before = utcnow()
    dialog.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.locator(".nt-row", has_text=TITLE)).to_have_count(0)
    expect(page.locator('[data-stat="critical"] .nt-card__value')).to_have_text("0")
    expect(page.locator('[data-stat="snoozed"] .nt-card__value')).to_have_text("1")
    until = _alert(database).snoozed_until
    assert until is not None
    assert before + timedelta(hours=4) - timedelta(minutes=1) < until
    assert until < utcnow() + timedelta(hours=4, minutes=1)

    page.get_by_label("Snoozed").select_option("true")
    row = page.locator(".nt-row", has_text=TITLE)
    expect(row.locator("[data-snoozed]")).to_contain_text("Snoozed until")
    assert "snoozed=true" in page.url
    row.get_by_role("button", name="Unsnooze").click()
    # The reloaded page (not the old one going away) has no snoozed alert; the filter stays.
    expect(page.locator('[data-stat="snoozed"] .nt-card__value')).to_have_text("0")
    expect(page.locator(".nt-row", has_text=TITLE)).to_have_count(0)
    page.get_by_label("Snoozed").select_option("")
    expect(page.locator(".nt-row", has_text=TITLE)).to_have_count(1)
    expect(page.locator('[data-stat="critical"] .nt-card__value')).to_have_text("1")


def test_a_custom_time_too_far_says_why(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    _seed(database)
    sign_in(page, live, admin, "/admin/notifications?tab=alerts")
    page.locator(".nt-row", has_text=TITLE).get_by_role("button", name="Snooze", exact=True).click()
    dialog = page.locator("#nt-snooze")
    far = (utcnow() + timedelta(days=45)).strftime("%Y-%m-%dT%H:%M")
    dialog.get_by_label("Snooze until (your time)").fill(far)
    expect(dialog.get_by_label("Until", exact=True)).to_be_checked()
    dialog.get_by_role("button", name="Snooze", exact=True).click()
    expect(dialog.locator("[data-dialog-error]")).to_contain_text("must be at most 30 days away")
    soon = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    dialog.get_by_label("Snooze until (your time)").fill(soon)
    dialog.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.locator(".nt-row", has_text=TITLE)).to_have_count(0)
    assert _alert(database).snoozed_until is not None
