"""The Channels page and the Delivery log in a real browser (chromium driven by Playwright),
with a real webhook receiver on loopback and the real dispatcher run in between."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from notifier import Database
from notifier.delivery import endpoint_service
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.models import Delivery
from tests.notifier.conftest import Receiver
from tests.receivers import events_v2_answer, serve_receiver
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin

pytestmark = pytest.mark.browser
LOCAL = DispatchSettings(allow_private=True)


def _ready(page: Page) -> None:
    """Wait until the page's script is wired up (it marks its main element)."""
    page.wait_for_function("() => document.querySelector('main[data-ready]') !== null")


def _reloading(page: Page, action: Callable[[], object]) -> None:
    """Run ``action``, which loads a page (a link, or the script's reload), and wait for
    the new page to be ready, never mistaking the old one for it."""
    page.evaluate("window.__old_page = true")
    action()
    page.wait_for_function(
        "() => !window.__old_page && document.querySelector('main[data-ready]') !== null"
    )


def _nav(page: Page, name: str) -> None:
    link = page.get_by_role("navigation", name="Admin").get_by_role("link", name=name)
    _reloading(page, link.click)


def _add_webhook(page: Page, name: str, url: str) -> str:
    """Fill the form, submit, and return the secret the dialog shows once."""
    _ready(page)
    form = page.locator("form[data-create-endpoint]")
    form.get_by_label("Name").fill(name)
    form.get_by_label("URL").fill(url)
    form.get_by_label("notification.created").check()
    form.get_by_role("button", name="Add channel").click()
    dialog = page.locator("#nt-secret")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("it is not shown again")
    secret = dialog.locator("[data-secret]").text_content() or ""
    assert secret.startswith("whsec_")
    return secret


def test_add_a_webhook_see_the_secret_once_send_a_test_and_see_it_delivered(
    page: Page, live: LiveServer, admin: Admin, database: Database, receiver: Receiver
) -> None:
    sign_in(page, live, admin)
    _nav(page, "Channels")
    expect(page).to_have_url(live.url + "/admin/channels")
    expect(page.locator("main [data-empty]")).to_contain_text("No channels yet")

    secret = _add_webhook(page, "Ops <b>hook</b>", receiver.url())
    shoot(page, "channels-secret")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copied]")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    _reloading(page, page.get_by_role("button", name="I saved it").click)

    row = page.locator("[data-endpoint-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".nt-row__title")).to_contain_text("Ops <b>hook</b>")  # text, not HTML
    expect(row.locator("[data-health]")).to_contain_text("Enabled")
    expect(row.locator("[data-health]")).to_contain_text("last success never")
    assert secret not in page.content()  # shown once: gone after the dialog

    row.get_by_role("button", name="Send test").click()
    expect(page.locator("[data-page-status]")).to_contain_text("Test event queued")
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "endpoint.test"

    _reloading(page, page.get_by_role("link", name="See it in the delivery log").click)
    delivery = page.locator("[data-delivery-id]")
    expect(delivery).to_have_count(1)
    expect(delivery.locator("[data-delivery-status]")).to_have_text("succeeded")
    expect(delivery).to_contain_text(request.headers["webhook-id"])
    delivery.get_by_text("Attempts (1)").click()
    attempt = delivery.locator("[data-attempt]")
    expect(attempt).to_be_visible()
    expect(attempt.locator("[data-response-status]")).to_have_text("204")
    expect(attempt).to_contain_text("succeeded")
    shoot(page, "delivery-log")

    _nav(page, "Channels")
    expect(page.locator("[data-health]")).not_to_contain_text("last success never")
    shoot(page, "channels")


def test_a_failing_receiver_shows_a_failed_delivery_that_replays(
    page: Page, live: LiveServer, admin: Admin, database: Database, receiver: Receiver
) -> None:
    sign_in(page, live, admin, "/admin/channels")
    _add_webhook(page, "flaky", receiver.url())
    _reloading(page, page.get_by_role("button", name="I saved it").click)
    receiver.then(422, body=b'{"error": "unknown event type"}')
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("[data-page-status]")).to_contain_text("Test event queued")
    dispatch_due(database, LOCAL)

    page.reload()
    _ready(page)
    expect(page.locator("[data-failed]")).to_have_text("1 failed")
    _reloading(page, page.locator("[data-failed]").click)
    delivery = page.locator("[data-delivery-id]")
    expect(delivery).to_have_count(1)
    expect(delivery.locator("[data-delivery-status]")).to_have_text("failed")
    expect(delivery.locator("[data-last-error]")).to_have_text("the receiver answered 422")
    delivery.get_by_text("Attempts (1)").click()
    expect(delivery.locator("[data-response-status]")).to_have_text("422")
    expect(delivery.locator("[data-response-body]")).to_have_text('{"error": "unknown event type"}')
    shoot(page, "delivery-log-failed")

    _reloading(page, delivery.get_by_role("button", name="Replay").click)
    # The page reloads with the filter still on "failed": the replayed row has left it.
    expect(page.locator("main [data-empty]")).to_contain_text("No deliveries match")
    dispatch_due(database, LOCAL)
    _reloading(page, lambda: page.get_by_label("Status").select_option(""))
    row = page.locator("[data-delivery-id]")
    expect(row.locator("[data-delivery-status]")).to_have_text("succeeded")
    expect(row.get_by_text("Attempts (2)")).to_be_visible()
    assert len(set(receiver.ids())) == 1 and len(receiver.ids()) == 2  # same webhook-id


def _wait_for_deliveries(database: Database, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with database.session_scope() as db:
            if db.scalar(select(func.count()).select_from(Delivery)) == count:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} deliveries were not queued within {timeout}s")
        time.sleep(0.05)


def test_replay_all_failed_since_disable_and_delete(
    page: Page, live: LiveServer, admin: Admin, database: Database, receiver: Receiver
) -> None:
    sign_in(page, live, admin, "/admin/channels")
    _add_webhook(page, "gone soon", receiver.url())
    _reloading(page, page.get_by_role("button", name="I saved it").click)
    for sent in (1, 2):
        receiver.then(400)
        page.get_by_role("button", name="Send test").click()
        # The status text is already there after the first click: wait for the row itself.
        _wait_for_deliveries(database, sent)
    dispatch_due(database, LOCAL)

    _nav(page, "Delivery log")
    expect(page.locator('[data-status="failed"]')).to_have_count(2)
    page.get_by_role("button", name="Replay failed").click()
    expect(page.locator("[data-page-status]")).to_contain_text("2 failed deliveries queued again")
    expect(page.locator('[data-status="pending"]')).to_have_count(2)

    _nav(page, "Channels")
    _reloading(page, page.get_by_role("button", name="Disable").click)
    expect(page.locator("[data-disabled]")).to_have_text("Disabled: disabled by an admin")
    expect(page.get_by_role("button", name="Send test")).to_be_disabled()
    _reloading(page, page.get_by_role("button", name="Enable").click)
    expect(page.locator("[data-health]")).to_contain_text("Enabled")

    page.get_by_role("button", name="Delete").click()
    dialog = page.locator("#nt-confirm")
    expect(dialog).to_contain_text("Delete “gone soon”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("[data-endpoint-id]")).to_have_count(1)
    page.get_by_role("button", name="Delete").click()
    _reloading(page, dialog.get_by_role("button", name="Delete").click)
    expect(page.locator("main [data-empty]")).to_contain_text("No channels yet")


def test_a_refused_url_is_explained_in_the_form(page: Page, live: LiveServer, admin: Admin) -> None:
    sign_in(page, live, admin, "/admin/channels")
    _ready(page)
    form = page.locator("form[data-create-endpoint]")
    form.get_by_label("Name").fill("bad")
    form.get_by_label("URL").fill("ftp://hooks.example/in")
    form.get_by_role("button", name="Add channel").click()
    expect(form.locator("[data-form-error]")).to_contain_text("url: must be an absolute http(s)")
    form.get_by_label("URL").fill("https://hooks.slack.com/services/T0/B0/abcdefghijklmnopWXYZ")
    form.get_by_label("Channel").select_option("slack")
    _reloading(page, form.get_by_role("button", name="Add channel").click)
    expect(page.locator("[data-display-url]")).to_have_text("https://hooks.slack.com/…WXYZ")
    expect(page.locator("#nt-secret")).to_be_hidden()  # Slack has no signing secret


def test_edit_an_endpoints_name_url_and_filter_with_errors_shown_in_the_dialog(
    page: Page, live: LiveServer, admin: Admin, database: Database, receiver: Receiver
) -> None:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db,
            name="Ops",
            channel="webhook",
            url=receiver.url("/old?token=keep-me-out-of-the-page"),
            allow_private=True,
            event_types=["alert.opened"],
            store_ids=[5],
        )
        endpoint_id = endpoint.id
    sign_in(page, live, admin, "/admin/channels")
    _ready(page)
    page.get_by_role("button", name="Edit").click()
    dialog = page.locator("#nt-edit")
    expect(dialog).to_be_visible()
    form = dialog.locator("form")
    expect(form.get_by_label("Name")).to_have_value("Ops")  # filled from what is saved
    expect(form.get_by_label("alert.opened")).to_be_checked()
    expect(form.get_by_label("notification.created")).not_to_be_checked()
    expect(form.get_by_label("Store ids")).to_have_value("5")
    expect(form.get_by_label("New URL")).to_have_value("")  # the saved URL is never shown
    assert "keep-me-out-of-the-page" not in page.content()

    form.get_by_label("Name").fill("Ops <i>v2</i>")
    form.get_by_label("New URL").fill("ftp://hooks.example/in")
    form.get_by_role("button", name="Save changes").click()
    expect(form.locator("[data-form-error]")).to_contain_text("url: must be an absolute http(s)")
    form.get_by_label("New URL").fill(receiver.url("/new"))
    form.get_by_label("Store ids").fill("5, x")
    form.get_by_role("button", name="Save changes").click()
    expect(form.locator("[data-form-error]")).to_contain_text("Store ids are whole numbers")
    form.get_by_label("Store ids").fill("5, 12")
    form.get_by_label("notification.created").check()
    form.get_by_label("Notifications from priority").select_option("high")
    _reloading(page, form.get_by_role("button", name="Save changes").click)

    row = page.locator("[data-endpoint-id]")
    expect(row.locator(".nt-row__title")).to_contain_text("Ops <i>v2</i>")  # text, not HTML
    expect(row).to_contain_text("events: alert.opened, notification.created")
    expect(row).to_contain_text("notifications from high")
    expect(row).to_contain_text("stores: 5, 12")
    with database.session_scope() as db:
        saved = endpoint_service.get(db, endpoint_id)
        assert saved is not None and saved.url == receiver.url("/new")

    # Cancel changes nothing.
    page.get_by_role("button", name="Edit").click()
    form.get_by_label("Name").fill("not this")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    with database.session_scope() as db:
        saved = endpoint_service.get(db, endpoint_id)
        assert saved is not None and saved.name == "Ops <i>v2</i>"


def test_add_a_pagerduty_channel_its_key_never_shown_and_a_test_event_arrives(
    page: Page, live: LiveServer, admin: Admin, database: Database
) -> None:
    served = serve_receiver(answer=events_v2_answer)
    pagerduty = next(served)
    try:
        key = "R0UT1NGKEY0123456789abcdefABCDEF"
        sign_in(page, live, admin)
        _nav(page, "Channels")
        _ready(page)
        form = page.locator("form[data-create-endpoint]")
        routing = form.get_by_label("Routing key")
        expect(routing).to_be_hidden()
        form.get_by_label("Name").fill("On call")
        form.get_by_label("Channel").select_option("pagerduty")
        expect(routing).to_be_visible()
        form.get_by_label("URL").fill(pagerduty.url("/v2/enqueue"))
        routing.fill(key)
        _reloading(page, form.get_by_role("button", name="Add channel").click)
        row = page.locator("[data-endpoint-id]")
        expect(row).to_contain_text("routing key saved (not shown)")
        assert key not in page.content()
        row.get_by_role("button", name="Send test").click()
        expect(page.locator("[data-page-status]")).to_contain_text("Test event queued")
        assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
        [request] = pagerduty.requests
        assert b'"event_action":"trigger"' in request.body and key.encode() in request.body
    finally:
        served.close()
