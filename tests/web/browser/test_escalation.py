"""Escalation in a real browser: a policy made on the Escalation page escalates an alert over
two steps (a step's minute shortened to one second), and the alerts tab shows the step reached,
the owner (a filter link) and the runbook."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from notifier import Database, platform_alert_service
from notifier.delivery import endpoint_service
from notifier.escalation import queue_escalations
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin

pytestmark = pytest.mark.browser
TITLE = "Product import stalled"
RUNBOOK = "https://runbooks.example/imports"
SECOND = timedelta(seconds=1)  # the tests' escalation minute (notifier_escalation_minute)


def _beat_until_step(database: Database, step: int, timeout: float = 10) -> None:
    """Tick the escalation runner as a fast beat would, until the alert reached ``step``.

    (A tick late under load may skip a step: the runner sends only the step owed now.)
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.session_scope(immediate=True) as db:
            queue_escalations(db, default_interval=None, minute=SECOND)
        with database.session_scope() as db:
            alert = platform_alert_service.page_alerts(db).items[0]
            if (alert.escalation_step or 0) >= step:
                return
        time.sleep(0.2)
    raise AssertionError(f"the alert never reached step {step}")


def test_a_policy_made_on_the_page_escalates_an_alert_over_two_steps(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    with database.session_scope() as db:
        endpoint_service.create(
            db, name="Pager", channel="webhook", url="http://127.0.0.1:9/pager", allow_private=True
        )
        endpoint_service.create(
            db,
            name="Ops lead",
            channel="webhook",
            url="http://127.0.0.1:9/lead",
            allow_private=True,
        )
    sign_in(page, live, admin, "/admin/escalation")
    form = page.locator("form[data-policy-form]")
    form.get_by_label("Name").fill("Imports on call")
    form.get_by_label("Owner (empty: any)").fill("team-imports")
    first, second = page.locator('[data-step="1"]'), page.locator('[data-step="2"]')
    first.get_by_label("After minutes").fill("1")
    first.get_by_label("Pager (webhook)").check()
    second.get_by_label("After minutes").fill("1")
    second.get_by_label("Ops lead (webhook)").check()
    form.get_by_role("button", name="Add policy").click()
    row = page.locator("[data-policy-id]", has_text="Imports on call")
    expect(row).to_contain_text("owner: team-imports")
    expect(row.locator("[data-steps] li")).to_have_text(
        ["after 1 min: Pager", "after 1 min: Ops lead"]
    )
    shoot(page, "escalation-policies")
    row.get_by_role("button", name="Edit").click()
    expect(form.get_by_label("Owner (empty: any)")).to_have_value("team-imports")
    form.get_by_label("Name").fill("Imports pager")
    form.get_by_role("button", name="Save changes").click()
    edited = page.locator("[data-policy-id]", has_text="Imports pager")
    expect(edited).to_contain_text("owner: team-imports")
    expect(edited.locator("[data-steps] li")).to_have_count(2)

    with database.session_scope() as db:
        platform_alert_service.create_or_increment_alert(
            db,
            alert_type="system",
            severity="critical",
            title=TITLE,
            owner="team-imports",
            runbook=RUNBOOK,
        )
    _beat_until_step(database, 1)
    page.goto(live.url + "/admin/notifications?tab=alerts")
    alert = page.locator(".nt-row", has_text=TITLE)
    expect(alert.locator("[data-escalation]")).to_contain_text("Escalated to step")
    _beat_until_step(database, 2)
    page.reload()
    expect(alert.locator("[data-escalation]")).to_contain_text("Escalated to step 2 at")
    expect(alert.locator("[data-runbook]")).to_have_attribute("href", RUNBOOK)
    shoot(page, "alert-escalated")
    alert.locator("[data-owner] a").click()
    expect(page.get_by_label("Owner")).to_have_value("team-imports")
    expect(page.locator(".nt-row", has_text=TITLE)).to_be_visible()
