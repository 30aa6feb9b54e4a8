"""The Channels and Delivery log pages as the server renders them (the browser tests drive
the same pages with chromium)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier import Database
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.endpoints import endpoint_service
from notifier.models import DeliveryEndpoint
from tests.notifier.conftest import Receiver
from tests.web.conftest import API, Admin, login
from tests.web.test_pages_fuzz import VALUES

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SLACK_URL = "https://hooks.slack.com/services/T0SHOP/B0OPS/s3cr3tS3cr3tS3cr3tXyZw"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Loopback receivers need plain http and private addresses (dev and test setting)."""
    return app_config | {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": True}


def _endpoint(database: Database, url: str, **fields: Any) -> tuple[int, str | None]:
    with database.session_scope() as db:
        endpoint, secret = endpoint_service.create(
            db, **{"name": "ops", "channel": "webhook", "url": url, "allow_private": True} | fields
        )
        return endpoint.id, secret


def test_pages_need_a_login_and_the_header_links_them(client: FlaskClient, admin: Admin) -> None:
    for path in ("/admin/channels", "/admin/deliveries"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login?next=" in response.headers["Location"]
    login(client, admin)
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert 'href="/admin/channels"' in html and 'href="/admin/deliveries"' in html
    channels = client.get("/admin/channels").get_data(as_text=True)
    assert '<a href="/admin/channels" aria-current="page">Channels</a>' in channels
    assert "No channels yet" in channels
    assert "Nothing delivered yet" in client.get("/admin/deliveries").get_data(as_text=True)


def test_channels_show_health_but_never_a_secret_nor_a_chat_url(
    client: FlaskClient, admin: Admin, database: Database, receiver: Receiver
) -> None:
    hook_id, secret = _endpoint(database, receiver.url(), name=XSS, min_priority="high")
    _endpoint(database, SLACK_URL, name="chat", channel="slack")
    assert secret is not None
    receiver.then(400, body=b"nope")
    with database.session_scope() as db:
        hook = db.get(DeliveryEndpoint, hook_id)
        assert hook is not None
        endpoint_service.send_test(db, hook)
        endpoint_service.send_test(db, hook)
    dispatch_due(database, DispatchSettings(allow_private=True), limit=1)
    login(client, admin)
    html = client.get("/admin/channels").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;" in html
    assert secret not in html and secret.removeprefix("whsec_") not in html
    assert "s3cr3t" not in html and "T0SHOP" not in html
    assert "https://hooks.slack.com/…XyZw" in html
    assert ">1 pending</a>" in html and ">1 failed</a>" in html
    assert "failing since" in html and "notifications from high" in html


def test_the_log_shows_attempts_and_explains_refused_filters(
    client: FlaskClient, admin: Admin, database: Database, receiver: Receiver
) -> None:
    hook_id, _ = _endpoint(database, receiver.url())
    receiver.then(500, body=XSS.encode())
    with database.session_scope() as db:
        hook = db.get(DeliveryEndpoint, hook_id)
        assert hook is not None
        endpoint_service.send_test(db, hook)
    dispatch_due(database, DispatchSettings(allow_private=True))
    login(client, admin)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert 'data-status="pending"' in html and "Attempts (1)" in html
    assert "HTTP500" in html and "the receiver answered 500" in html
    assert XSS not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert (
        client.get("/admin/deliveries?status=failed")
        .get_data(as_text=True)
        .count("data-delivery-id")
        == 0
    )
    refused = client.get("/admin/deliveries?status=lost&endpoint_id=x").get_data(as_text=True)
    assert "Ignored unknown status" in refused and "Ignored endpoint id" in refused
    assert refused.count("data-delivery-id") == 1
    assert f'data-deliveries-api="{API}/deliveries"' in html


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=st.dictionaries(
        st.one_of(st.sampled_from(["status", "endpoint_id", "event_type", "page"]), st.text()),
        st.one_of(VALUES, st.sampled_from(["failed", "alert.opened", "endpoint.test"])),
    )
)
def test_no_query_string_gives_the_log_a_5xx(
    browser: tuple[FlaskClient, str], database: Database, query: dict[str, str]
) -> None:
    client, _ = browser
    for path in ("/admin/deliveries", "/admin/channels"):
        response = client.get(path, query_string=query)
        assert response.status_code == 200, (query, response.get_data(as_text=True)[-500:])


def test_pagerduty_and_apprise_channels_show_no_credential(
    client: FlaskClient, admin: Admin, database: Database
) -> None:
    key = "R0UT1NGKEY0123456789abcdefABCDEF"
    _endpoint(database, "", name="on call", channel="pagerduty", routing_key=key)
    telegram = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123"
    _endpoint(database, telegram, name="phones", channel="apprise")
    login(client, admin)
    html = client.get("/admin/channels").get_data(as_text=True)
    assert key not in html and "AAHdqTcv" not in html and "123456789" not in html
    assert "https://events.pagerduty.com/v2/enqueue" in html and "tgram://…" in html
    assert "routing key saved (not shown)" in html
    assert '<option value="pagerduty">' in html and '<option value="apprise">' in html
