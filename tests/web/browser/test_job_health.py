"""A missed scheduled run in a real browser: in the bell, and on the Job health page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from notifier import Database, utcnow
from notifier.health import EntrySpec, beat_ticked, check_schedule, sync_entries
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin

pytestmark = pytest.mark.browser


def _missed(database: Database) -> None:
    now = utcnow()
    specs = [
        EntrySpec(
            name=name,
            task=f"shop.{name}",
            schedule_text=text,
            period_seconds=period,
            grace_seconds=60,
            first_due_at=now + due,
        )
        for name, text, period, due in (
            ("nightly-import", "crontab: 0 3 * * * (m/h/dM/MY/d)", 86400, timedelta(minutes=-5)),
            ("price-sync", "freq: 5.00 minutes", 300, timedelta(minutes=4)),
        )
    ]
    with database.session_scope() as db:
        sync_entries(db, specs, now=now - timedelta(minutes=10))
        beat_ticked(db, stale_after_seconds=360, at=now)
        check_schedule(db, now)


def test_a_missed_run_is_in_the_bell_and_on_the_job_health_page(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    _missed(database)
    sign_in(page, live, admin)
    bell = page.locator("[data-notifier-bell]")
    expect(bell.locator("[data-badge]")).to_have_text("1")
    bell.locator("[data-bell-button]").click()
    expect(bell.locator("[data-list]")).to_contain_text("Scheduled job missed: nightly-import")
    page.keyboard.press("Escape")  # the open panel covers the navigation, as for a user
    expect(bell.locator("[data-list]")).to_be_hidden()
    page.get_by_role("link", name="Job health").click()
    expect(page).to_have_title("Job health · Admin")
    expect(page.locator('[data-entry="nightly-import"]')).to_have_attribute("data-state", "missed")
    expect(page.locator('[data-entry="price-sync"]')).to_have_attribute("data-state", "ok")
    expect(page.locator("[data-scheduler-state]")).to_contain_text("Celery beat is running")
    shoot(page, "job-health")
