"""The admin pages in a real browser (the fixtures in this folder's conftest): login, the
bell, the lists, filters, resolving, the keyboard, an outage and the screenshots the README
shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from notifier.web import create_app
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import insert

from notifier import Database, admin_notification_service, platform_alert_service
from notifier.keyset import UNREAD_CAP
from notifier.models import AdminNotification
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin, make_token

XSS_TITLE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS_URL = "javascript:window.__xss=3"

pytestmark = pytest.mark.browser


def seed(database: Database, unread: int = 3) -> None:
    """Notifications of each priority and a few alerts, as failing jobs would leave them."""
    priorities = ["critical", "high", "normal", "low"]
    with database.session_scope() as db:
        for i in range(unread):
            admin_notification_service.create_notification(
                db,
                type="import_failure",
                priority=priorities[i % 4],
                title=f"Import failed for Store {i}",
                message=f"Import job {i}: CSV parsing failed on line {i + 2}",
                action_url=f"/admin/notifications?store_id={i}",
                store_id=i,
            )
        platform_alert_service.create_or_increment_alert(
            db,
            alert_type="integration",
            severity="error",
            title="worker.jobs.import_letzshop_orders failed: HTTPError",
            affected_stores=[7],
            affected_systems=["letzshop"],
        )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="capacity", severity="critical", title="Worker process killed"
        )


def badge(page: Page) -> Any:
    """The bell's unread badge."""
    return page.locator("[data-notifier-bell] [data-badge]")


def test_login_badge_and_logout(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=3)
    page.goto(live.url + "/admin/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    shoot(page, "login")
    sign_in(page, live, admin)
    expect(page).to_have_title("Notifications · Admin")
    expect(badge(page)).to_have_text("3")
    expect(page.locator('[data-stat="unread"] .nt-card__value')).to_have_text("3")
    shoot(page, "notifications")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: "/admin/login" in url)
    page.goto(live.url + "/admin/notifications")
    page.wait_for_url(lambda url: "/admin/login" in url)


def test_past_the_counting_cap_the_bell_and_the_card_say_1000_plus(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    rows = [
        {"type": "system_info", "title": f"n{i}", "message": "m", "notification_metadata": {}}
        for i in range(UNREAD_CAP + 1)
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(AdminNotification.__table__), rows)
    sign_in(page, live, admin)
    expect(badge(page)).to_have_text("99+")
    button = page.locator("[data-notifier-bell] [data-bell-button]")
    expect(button).to_have_attribute("aria-label", "Notifications, 1,000+ unread")
    expect(page.locator('[data-stat="unread"] .nt-card__value')).to_have_text("1,000+")


def test_api_notification_appears_after_next_poll(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=2)
    sign_in(page, live, admin)
    expect(badge(page)).to_have_text("2")
    token = make_token(database, admin)
    response = page.request.post(
        live.url + "/api/v1/admin/notifications",
        headers={"Authorization": f"Bearer {token}"},
        data={"type": "critical_error", "title": "Database is full", "message": "disk at 100%"},
    )
    assert response.status == 201
    expect(badge(page)).to_have_text("3")
    page.locator("[data-bell-button]").click()
    expect(page.locator("[data-list] li").first).to_contain_text("Database is full")
    expect(page.locator("[data-list] li").first).to_have_class("nt-item nt-prio-normal")
    expect(page.locator("[data-announce]")).to_have_text("3 unread notifications")
    shoot(page, "bell-dropdown")


def test_mark_one_then_all_as_read(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=4)
    sign_in(page, live, admin)
    expect(badge(page)).to_have_text("4")
    page.locator("[data-bell-button]").click()
    page.locator("[data-list] li").first.get_by_role("button", name="Mark").click()
    expect(badge(page)).to_have_text("3")
    expect(page.locator("[data-list] li")).to_have_count(3)
    # the page's own bulk action
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Mark all as read").last.click()
    expect(page.locator('[data-stat="unread"] .nt-card__value')).to_have_text("0")
    expect(badge(page)).to_be_hidden()
    expect(page.locator(".nt-row.is-read")).to_have_count(4)


def test_filters_change_list_and_url_and_tab_survives_reload(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=4)
    sign_in(page, live, admin)
    expect(page.locator(".nt-row")).to_have_count(4)
    page.get_by_label("Priority").select_option("critical")
    page.wait_for_url(lambda url: "priority=critical" in url)
    expect(page.locator(".nt-row")).to_have_count(1)
    expect(page.locator(".nt-row")).to_contain_text("Import failed for Store 0")
    page.go_back()
    page.wait_for_url(lambda url: "priority=critical" not in url)
    expect(page.locator(".nt-row")).to_have_count(4)
    page.get_by_role("link", name="Platform Alerts").click()
    page.wait_for_url(lambda url: "tab=alerts" in url)
    page.get_by_label("Severity").select_option("critical")
    page.wait_for_url(lambda url: "severity=critical" in url)
    page.reload()
    expect(page.get_by_role("link", name="Platform Alerts")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_label("Severity")).to_have_value("critical")
    expect(page.locator(".nt-row")).to_have_count(1)
    expect(page.locator(".nt-row")).to_contain_text("Worker process killed")


def test_resolve_alert_with_notes(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database)
    sign_in(page, live, admin, "/admin/notifications?tab=alerts")
    shoot(page, "alerts")
    row = page.locator(".nt-row", has_text="Worker process killed")
    row.get_by_role("button", name="Resolve").click()
    dialog = page.locator("#nt-resolve")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Resolve").click()
    expect(dialog).to_be_visible()  # notes are required
    dialog.get_by_label("Resolution notes").fill("Raised the memory limit <b>to 2 GB</b>")
    shoot(page, "resolve-dialog")
    dialog.get_by_role("button", name="Resolve").click()
    resolved = page.locator(".nt-row", has_text="Worker process killed").locator(
        "[data-resolution]"
    )
    expect(resolved).to_contain_text("Raised the memory limit <b>to 2 GB</b>")
    # Named as the header names the signed-in admin (display name), not by email.
    expect(resolved).to_contain_text("Ada")
    expect(resolved).not_to_contain_text(admin.email)
    expect(page.locator('[data-stat="resolved-today"] .nt-card__value')).to_have_text("1")


def test_dropdown_by_keyboard_alone(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=2)
    sign_in(page, live, admin)
    expect(badge(page)).to_have_text("2")
    page.locator("[data-bell-button]").focus()
    page.keyboard.press("Enter")
    panel = page.locator("[data-panel]")
    expect(panel).to_be_visible()
    expect(page.locator("[data-bell-button]")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.locator("[data-bell-button]")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(panel).to_be_visible()
    first = page.locator("[data-panel] a[href], [data-panel] button:not([disabled])").first
    expect(first).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Mark as read"
    page.keyboard.press("Enter")  # marks the first notification read
    expect(badge(page)).to_have_text("1")
    page.mouse.click(5, 600)  # outside click closes
    expect(panel).to_be_hidden()


def test_connection_lost_and_recovered(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=1)
    sign_in(page, live, admin)
    expect(badge(page)).to_have_text("1")
    offline = page.locator(".nt-bell__offline")
    expect(offline).to_be_hidden()
    live.stop()
    expect(offline).to_be_visible(timeout=15_000)
    expect(offline).to_contain_text("Connection lost")
    shoot(page, "connection-lost")
    live.start()
    with database.session_scope() as db:
        admin_notification_service.create_notification(
            db, type="system_info", title="Back", message="m"
        )
    expect(offline).to_be_hidden(timeout=15_000)
    expect(badge(page)).to_have_text("2")


def test_hostile_strings_render_as_text(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    with database.session_scope() as db:
        admin_notification_service.create_notification(
            db,
            type="import_failure",
            title=XSS_TITLE,
            message=XSS_TITLE + "\n<iframe src=/admin/logout></iframe>",
            metadata={"row": XSS_TITLE},
        )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="error", title=XSS_TITLE, description=XSS_TITLE
        )
    token = make_token(database, admin)
    refused = page.request.post(
        live.url + "/api/v1/admin/notifications",
        headers={"Authorization": f"Bearer {token}"},
        data={"type": "system_info", "title": "x", "message": "y", "action_url": XSS_URL},
    )
    assert refused.status == 422
    sign_in(page, live, admin)
    page.locator("[data-bell-button]").click()
    expect(page.locator("[data-list] .nt-item__title").first).to_have_text(XSS_TITLE)
    expect(page.locator(".nt-row__title").first).to_contain_text(XSS_TITLE)
    page.get_by_role("link", name="Platform Alerts").click()
    expect(page.locator(".nt-row__title").first).to_contain_text(XSS_TITLE)
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main iframe, [data-list] img").count() == 0


def test_write_without_csrf_token_is_refused(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=1)
    sign_in(page, live, admin)
    status = page.evaluate(
        """async () => (await fetch('/api/v1/admin/notifications/mark-all-read',
               {method: 'PUT', credentials: 'same-origin'})).status"""
    )
    assert status == 403
    expect(badge(page)).to_have_text("1")


def test_phone_width(chromium: Browser, live: LiveServer, admin: Admin, database: Database) -> None:
    seed(database, unread=3)
    ctx = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = ctx.new_page()
    sign_in(page, live, admin)
    expect(badge(page)).to_have_text("3")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shoot(page, "notifications-phone")
    page.locator("[data-bell-button]").click()
    panel = page.locator("[data-panel]")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"the bell panel is cut off: {box}"
    ctx.close()


def test_no_console_errors_on_the_pages(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=2)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    sign_in(page, live, admin)
    with page.expect_response(lambda response: "favicon" in response.url) as icon:
        page.goto(live.url + "/admin/notifications?tab=alerts")
    assert icon.value.status == 200 and icon.value.url.startswith(live.url + "/admin/static/")
    expect(badge(page)).to_have_text("2")
    assert errors == [] and failed == []


@pytest.fixture
def live_no_poll(live_config: dict[str, Any]) -> Iterator[LiveServer]:
    """The app with the bell's poll at 10 minutes: only the stream can bring news in time."""
    server = LiveServer(create_app({**live_config, "NOTIFIER_POLL_INTERVAL_MS": 600_000}))
    server.start()
    yield server
    server.stop()
    server.app.extensions["notifier"].state(server.app).database.dispose()


def open_streams(server: LiveServer) -> int:
    """How many event streams the server holds."""
    return int(server.app.extensions["notifier"].state(server.app).hub.open_streams)


def test_a_committed_failure_shows_in_the_bell_without_waiting_for_the_poll(
    page: Page, live_no_poll: LiveServer, admin: Admin, database: Database
) -> None:
    seed(database, unread=1)
    sign_in(page, live_no_poll, admin)
    expect(badge(page)).to_have_text("1")
    page.wait_for_function(
        "() => performance.getEntriesByType('resource').some((e) => e.name.includes('/stream'))"
    )
    with database.session_scope() as db:  # as the worker's drainer records a failure
        admin_notification_service.notify_critical_error(
            db, error_type="Disk", error_message="disk full"
        )
    # the poll is 10 minutes away: this is the stream
    expect(badge(page)).to_have_text("2", timeout=10_000)
    page.locator("[data-bell-button]").click()
    expect(page.locator("[data-list] li").first).to_contain_text("Critical error: Disk")
    # the page's unread card follows too, and the page offers the new row
    expect(page.locator('[data-stat="unread"] .nt-card__value')).to_have_text("2")
    expect(page.locator("[data-live]")).to_contain_text("1 new update")


def test_reconnecting_replays_what_happened_while_the_server_was_down(
    page: Page, live_no_poll: LiveServer, admin: Admin, database: Database
) -> None:
    sign_in(page, live_no_poll, admin)
    page.evaluate(
        """() => {
            window.__live = [];
            document.addEventListener("notifier:live", ({ detail }) => {
                if (detail.kind === "notification") window.__live.push(detail.data.title);
            });
        }"""
    )
    expect(page.locator("[data-bell-button]")).to_have_attribute(
        "aria-label", "Notifications, none unread"
    )
    live_no_poll.stop()
    deadline = time.monotonic() + 10
    while open_streams(live_no_poll) and time.monotonic() < deadline:
        time.sleep(0.1)  # the open stream ends by itself (2 s); no new one can start
    assert open_streams(live_no_poll) == 0
    with database.session_scope() as db:
        for n in range(3):
            admin_notification_service.create_notification(
                db, type="system_info", title=f"While down {n}", message="m"
            )
    live_no_poll.start()
    expect(badge(page)).to_have_text("3", timeout=15_000)
    titles = page.evaluate("() => window.__live")
    # Nothing lost, in order; a later reconnect may repeat a replay (events are idempotent).
    assert list(dict.fromkeys(titles)) == ["While down 0", "While down 1", "While down 2"]
