"""The Notification settings page in a real browser (chromium driven by Playwright): the
matrix, the locked rows, quiet hours with a zone, the digest, saved through the API."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from notifier import Database
from notifier.preferences.store import preferences_document
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin

pytestmark = pytest.mark.browser


def _open_settings(page: Page, live: LiveServer, admin: Admin) -> None:
    sign_in(page, live, admin)
    page.get_by_role("navigation", name="Admin").get_by_role(
        "link", name="Notification settings"
    ).click()
    page.wait_for_function("() => document.querySelector('main[data-ready]') !== null")


def test_an_admin_changes_types_quiet_hours_and_digest(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    _open_settings(page, live, admin)
    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()
    security = page.locator('tr[data-category="notification:security_alert"]')
    expect(security.get_by_text("locked at critical")).to_be_visible()
    expect(
        page.locator('tr[data-category="notification:import_failure"] .nt-locked')
    ).to_have_count(0)

    page.get_by_label("import_failure on email: mode").select_option("digest")
    page.get_by_label("import_failure on email: from").select_option("high")
    page.get_by_label("system_info on in_app: mode").select_option("off")
    page.get_by_label("Time zone", exact=True).select_option("Europe/Berlin")
    page.get_by_role("button", name="Add a quiet window").click()
    window = page.locator("[data-window]").first
    for day in ("Mon", "Tue", "Wed"):
        window.get_by_label(day).check()
    window.get_by_label("From").fill("21:30")
    window.get_by_label("Until").fill("06:45")
    page.get_by_label("How often").select_option("daily")
    page.get_by_label("At (daily, your time zone)").select_option("7")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    shoot(page, "notification-settings")

    with database.session_scope() as db:
        saved = preferences_document(db, admin.id)
    assert saved["rules"]["email"]["notification:import_failure"] == {
        "mode": "digest",
        "min_level": "high",
    }
    assert saved["rules"]["in_app"]["notification:system_info"]["mode"] == "off"
    assert saved["time_zone"] == "Europe/Berlin"
    assert saved["quiet_hours"] == [{"days": [0, 1, 2], "start": "21:30", "end": "06:45"}]
    assert saved["digest"] == {"frequency": "daily", "hour": 7}

    # A reload shows what was saved.
    page.reload()
    expect(page.get_by_label("import_failure on email: mode")).to_have_value("digest")
    expect(page.locator("[data-window] [data-start]")).to_have_value("21:30")
    expect(page.get_by_label("Time zone", exact=True)).to_have_value("Europe/Berlin")


def test_a_window_without_days_is_refused_and_says_why(
    page: Page, live: LiveServer, admin: Admin
) -> None:
    _open_settings(page, live, admin)
    page.get_by_role("button", name="Add a quiet window").click()
    page.get_by_role("button", name="Save settings").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Not saved")
    expect(status).to_contain_text("quiet_hours")
