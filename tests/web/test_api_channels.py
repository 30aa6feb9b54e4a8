"""The delivery API: endpoints (channels) and the delivery log, on SQLite and PostgreSQL,
against a real HTTP receiver on loopback and the real dispatcher."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from standardwebhooks.webhooks import Webhook

from notifier import Database
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.models import Delivery
from notifier.outbox import ensure_default_email_endpoint
from tests.notifier.conftest import Receiver
from tests.web.conftest import API, Admin, login

ENDPOINTS = f"{API}/endpoints"
DELIVERIES = f"{API}/deliveries"
LOCAL = DispatchSettings(allow_private=True)
SLACK_URL = "https://hooks.slack.com/services/T0SHOP/B0OPS/s3cr3tS3cr3tS3cr3tXyZw"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Loopback receivers need plain http and private addresses (dev and test setting)."""
    return app_config | {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": True}


def _webhook(api: FlaskClient, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    body = {"name": "ops", "channel": "webhook", "url": receiver.url()} | fields
    response = api.post(ENDPOINTS, json=body)
    assert response.status_code == 201, response.json
    created: dict[str, Any] = response.json
    return created


def test_a_webhook_secret_is_shown_once(api: FlaskClient, receiver: Receiver) -> None:
    created = _webhook(api, receiver, event_types=["alert.opened", "endpoint.test"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["has_secret"] is True
    assert created["display_url"] == receiver.url()
    assert created["event_types"] == ["alert.opened", "endpoint.test"]
    assert created["is_enabled"] is True and created["pending_deliveries"] == 0
    location = f"{ENDPOINTS}/{created['id']}"
    one = api.get(location)
    assert one.status_code == 200 and "secret" not in one.json
    assert one.json["has_secret"] is True
    for response in (one, api.get(ENDPOINTS)):
        assert secret not in response.get_data(as_text=True)
        assert secret.removeprefix("whsec_") not in response.get_data(as_text=True)
    assert [item["id"] for item in api.get(ENDPOINTS).json["items"]] == [created["id"]]


def test_slack_and_teams_urls_are_credentials_and_never_shown(api: FlaskClient) -> None:
    created = api.post(ENDPOINTS, json={"name": "chat", "channel": "slack", "url": SLACK_URL})
    assert created.status_code == 201
    assert created.json["secret"] is None and created.json["has_secret"] is False
    assert created.json["display_url"] == "https://hooks.slack.com/…XyZw"
    teams_url = "https://shop.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=Zq9s"
    teams = api.post(ENDPOINTS, json={"name": "teams", "channel": "teams", "url": teams_url})
    assert teams.json["display_url"] == "https://shop.logic.azure.com/…Zq9s"
    for response in (
        created,
        teams,
        api.get(ENDPOINTS),
        api.get(f"{ENDPOINTS}/{teams.json['id']}"),
    ):
        text = response.get_data(as_text=True)
        assert "services/T0SHOP" not in text and "s3cr3t" not in text and "workflows" not in text
    # A webhook's path shows, its query (where tokens ride) does not.
    hook = api.post(
        ENDPOINTS,
        json={"name": "q", "channel": "webhook", "url": "https://hooks.example/in?token=abc"},
    )
    assert hook.json["display_url"] == "https://hooks.example/in?…"
    rotate = api.post(f"{ENDPOINTS}/{created.json['id']}/rotate-secret")
    assert rotate.status_code == 409 and "webhook" in rotate.json["error"]["message"]


def test_urls_are_checked_by_the_engine_rules(app_config: dict[str, Any], token: str) -> None:
    strict = create_app(app_config | {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": False})
    client = strict.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    try:
        for url, says in [
            ("http://hooks.example/in", "https"),
            ("https://127.0.0.1/in", "not a public address"),
            ("https://10.1.2.3/in", "not a public address"),
            ("https://[::ffff:7f00:1]/in", "not a public address"),  # IPv4-mapped
            ("https://[::ffff:127.0.0.1]/in", "bracketed IPv6"),  # hex only
            ("https://[fd00::1]/in", "not a public address"),  # ULA
            ("https://user:pw@hooks.example/in", "http(s) URL"),
            ("https://[::::]/in", "http(s) URL"),
            ("https://hooks.example:99999/", "http(s) URL"),
            ("javascript:alert(1)", "http(s) URL"),
            ("https://hooks.example/a b", "http(s) URL"),
        ]:
            body = {"name": "x", "channel": "webhook", "url": url}
            response = client.post(ENDPOINTS, json=body)
            assert response.status_code == 422, (url, response.json)
            assert says in response.json["error"]["details"]["url"], url
        refused = client.post(ENDPOINTS, json={"name": "x", "channel": "email", "url": SLACK_URL})
        assert refused.status_code == 422 and "channel" in refused.json["error"]["details"]
        ok = client.post(ENDPOINTS, json={"name": "x", "channel": "webhook", "url": SLACK_URL})
        assert ok.status_code == 201
        patched = client.patch(f"{ENDPOINTS}/{ok.json['id']}", json={"url": "http://10.0.0.1/"})
        assert patched.status_code == 422 and "url" in patched.json["error"]["details"]
        assert client.get(ENDPOINTS).json["items"][0]["display_url"].startswith("https://hooks")
    finally:
        strict.extensions["notifier"].state(strict).database.dispose()


#: Private addresses in spellings other than the canonical one: every numeric form
#: inet_aton reads, a trailing dot, IPv4-compatible and site-local IPv6, and names.
DISGUISED_PRIVATE = [
    "https://2130706433/in",  # 127.0.0.1 as one decimal number
    "https://0x7f.1/in",  # 127.0.0.1 as hex "a.b"
    "https://0177.0.0.01/in",  # 127.0.0.1 in octal
    "https://10.1/in",  # 10.0.0.1 as "a.b"
    "https://192.168.257/in",  # 192.168.1.1 as "a.b.c"
    "https://0251.0376.0251.0376/in",  # 169.254.169.254 in octal
    "https://169.254.169.254./in",  # trailing dot
    "https://[::7f00:1]/in",  # IPv4-compatible 127.0.0.1
    "https://[::a9fe:a9fe]/in",  # IPv4-compatible 169.254.169.254
    "https://[fec0::1]/in",  # site-local
    "https://localhost/in",  # a name for loopback
    "https://api.localhost/in",  # every *.localhost is loopback (RFC 6761)
]


def test_private_addresses_in_any_spelling_are_refused_when_saved(
    app_config: dict[str, Any], token: str
) -> None:
    strict = create_app(app_config | {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": False})
    client = strict.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    try:
        ok = client.post(ENDPOINTS, json={"name": "x", "channel": "webhook", "url": SLACK_URL})
        assert ok.status_code == 201
        for url in DISGUISED_PRIVATE:
            for response in (
                client.post(ENDPOINTS, json={"name": "x", "channel": "webhook", "url": url}),
                client.patch(f"{ENDPOINTS}/{ok.json['id']}", json={"url": url}),
            ):
                assert response.status_code == 422, (url, response.json)
                error = response.json["error"]
                assert error["code"] == "validation_error", url
                assert "not a public address" in error["details"]["url"], (url, error)
        assert [item["id"] for item in client.get(ENDPOINTS).json["items"]] == [ok.json["id"]]
        assert (
            client.get(f"{ENDPOINTS}/{ok.json['id']}")
            .json["display_url"]
            .startswith("https://hooks.slack.com/")
        )
    finally:
        strict.extensions["notifier"].state(strict).database.dispose()


def test_update_changes_only_what_is_sent(api: FlaskClient, receiver: Receiver) -> None:
    created = _webhook(api, receiver, min_priority="high", store_ids=[3, 1, 3])
    assert created["store_ids"] == [1, 3]
    url = f"{ENDPOINTS}/{created['id']}"
    changed = api.patch(url, json={"name": "renamed", "min_severity": "error"})
    assert changed.status_code == 200
    assert (changed.json["name"], changed.json["min_priority"]) == ("renamed", "high")
    assert changed.json["min_severity"] == "error"
    assert api.patch(url, json={"min_priority": None}).json["min_priority"] is None
    assert api.patch(url, json={}).json == api.get(url).json
    for bad in ({"name": None}, {"name": "  "}, {"event_types": ["nope"]}, {"secret": "x"}):
        response = api.patch(url, json=bad)
        assert response.status_code == 422, bad
    assert api.get(url).json["name"] == "renamed"
    assert api.patch(f"{ENDPOINTS}/999999", json={}).status_code == 404


def test_disable_enable_and_a_disabled_endpoint_gets_no_test(
    api: FlaskClient, receiver: Receiver
) -> None:
    created = _webhook(api, receiver)
    url = f"{ENDPOINTS}/{created['id']}"
    disabled = api.put(f"{url}/disable")
    assert disabled.status_code == 200 and disabled.json["is_enabled"] is False
    assert disabled.json["disabled_reason"] == "disabled by an admin"
    test = api.post(f"{url}/test")
    assert test.status_code == 409 and "enable" in test.json["error"]["message"]
    enabled = api.put(f"{url}/enable")
    assert enabled.json["is_enabled"] is True and enabled.json["disabled_reason"] is None


def test_send_test_then_the_dispatcher_delivers_it_and_the_log_shows_the_attempt(
    api: FlaskClient, database: Database, receiver: Receiver
) -> None:
    created = _webhook(api, receiver)
    queued = api.post(f"{ENDPOINTS}/{created['id']}/test")
    assert queued.status_code == 202 and queued.json["queued"] == 1
    [delivery] = queued.json["deliveries"]
    assert (delivery["status"], delivery["event_type"]) == ("pending", "endpoint.test")
    assert api.get(f"{ENDPOINTS}/{created['id']}").json["pending_deliveries"] == 1

    assert dispatch_due(database, LOCAL).counts == {"succeeded": 1}
    [request] = receiver.requests
    event = Webhook(created["secret"]).verify(request.body, request.headers)
    assert event["type"] == "endpoint.test"
    assert request.headers["webhook-id"] == delivery["message_id"]

    detail = api.get(f"{DELIVERIES}/{delivery['id']}").json
    assert detail["status"] == "succeeded" and detail["next_attempt_at"] is None
    assert detail["payload"]["endpoint_id"] == created["id"]
    [attempt] = detail["attempts"]
    assert (attempt["outcome"], attempt["response_status"]) == ("succeeded", 204)
    health = api.get(f"{ENDPOINTS}/{created['id']}").json
    assert health["pending_deliveries"] == 0 and health["last_success_at"] is not None


def test_a_failed_delivery_is_listed_and_replays_with_the_same_webhook_id(
    api: FlaskClient, database: Database, receiver: Receiver
) -> None:
    created = _webhook(api, receiver)
    receiver.then(400, body=b"unknown event type")
    delivery = api.post(f"{ENDPOINTS}/{created['id']}/test").json["deliveries"][0]
    dispatch_due(database, LOCAL)

    failed = api.get(DELIVERIES, query_string={"status": "failed"}).json
    assert failed["total"] == 1 and failed["items"][0]["id"] == delivery["id"]
    assert failed["items"][0]["last_error"] == "the receiver answered 400"
    [attempt] = api.get(f"{DELIVERIES}/{delivery['id']}").json["attempts"]
    assert (attempt["error_class"], attempt["response_status"]) == ("HTTP400", 400)
    assert attempt["response_body"] == "unknown event type"
    assert api.get(f"{ENDPOINTS}/{created['id']}").json["failed_deliveries"] == 1

    replayed = api.post(f"{DELIVERIES}/{delivery['id']}/replay")
    assert replayed.status_code == 200 and replayed.json["status"] == "pending"
    again = api.post(f"{DELIVERIES}/{delivery['id']}/replay")
    assert again.status_code == 409 and "pending" in again.json["error"]["message"]
    dispatch_due(database, LOCAL)
    assert api.get(f"{DELIVERIES}/{delivery['id']}").json["status"] == "succeeded"
    assert receiver.ids() == [delivery["message_id"]] * 2
    assert len(api.get(f"{DELIVERIES}/{delivery['id']}").json["attempts"]) == 2
    assert api.post(f"{DELIVERIES}/999999/replay").status_code == 404


def test_replay_all_failed_since_optionally_for_one_endpoint(
    api: FlaskClient, database: Database, receiver: Receiver
) -> None:
    first, second = _webhook(api, receiver), _webhook(api, receiver, name="other")
    for endpoint in (first, second, first):
        receiver.then(404)
        api.post(f"{ENDPOINTS}/{endpoint['id']}/test")
    dispatch_due(database, LOCAL)
    assert api.get(DELIVERIES, query_string={"status": "failed"}).json["total"] == 3

    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    url = f"{DELIVERIES}/replay-failed"
    assert api.post(url, json={"since": later}).json == {"replayed": 0}
    one = api.post(url, json={"since": since, "endpoint_id": first["id"]})
    assert one.status_code == 200 and one.json == {"replayed": 2}
    assert api.get(DELIVERIES, query_string={"status": "failed"}).json["total"] == 1
    assert api.post(url, json={"since": since}).json == {"replayed": 1}
    assert api.post(url, json={"since": since, "endpoint_id": 999_999}).status_code == 404
    # A time must say its zone; an extreme offset is clamped, never a 500.
    naive = api.post(url, json={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and "since" in naive.json["error"]["details"]
    assert api.post(url, json={"since": "0001-01-01T00:00:00+05:00"}).json == {"replayed": 0}
    assert api.post(url, json={"since": "9999-12-31T23:59:59-12:00"}).json == {"replayed": 0}


def test_the_log_filters_and_pages(
    api: FlaskClient, database: Database, receiver: Receiver
) -> None:
    first, second = _webhook(api, receiver), _webhook(api, receiver, name="b")
    for _ in range(3):
        api.post(f"{ENDPOINTS}/{first['id']}/test")
    api.post(f"{ENDPOINTS}/{second['id']}/test")
    page = api.get(DELIVERIES, query_string={"limit": 2}).json
    assert (page["total"], len(page["items"]), page["skip"], page["limit"]) == (4, 2, 0, 2)
    rest = api.get(DELIVERIES, query_string={"limit": 2, "skip": 2}).json["items"]
    ids = [d["id"] for d in page["items"] + rest]
    assert ids == sorted(ids, reverse=True)  # newest first
    by_endpoint = api.get(DELIVERIES, query_string={"endpoint_id": second["id"]}).json
    assert by_endpoint["total"] == 1 and by_endpoint["items"][0]["endpoint_id"] == second["id"]
    query = {"event_type": "endpoint.test", "status": "pending"}
    assert api.get(DELIVERIES, query_string=query).json["total"] == 4
    assert api.get(DELIVERIES, query_string={"event_type": "alert.opened"}).json["total"] == 0
    for bad in ({"status": "lost"}, {"event_type": "x"}, {"limit": 0}, {"endpoint": 1}):
        assert api.get(DELIVERIES, query_string=bad).status_code == 422, bad
    assert api.get(f"{DELIVERIES}/999999").status_code == 404


def test_delete_removes_the_log_and_the_email_endpoint_is_only_disabled(
    api: FlaskClient, database: Database, receiver: Receiver
) -> None:
    created = _webhook(api, receiver)
    api.post(f"{ENDPOINTS}/{created['id']}/test")
    assert api.delete(f"{ENDPOINTS}/{created['id']}").status_code == 204
    assert api.get(f"{ENDPOINTS}/{created['id']}").status_code == 404
    assert api.get(DELIVERIES).json["total"] == 0
    with database.session_scope() as db:
        email_id = ensure_default_email_endpoint(db).id
    email = api.get(f"{ENDPOINTS}/{email_id}").json
    assert (email["channel"], email["display_url"]) == ("email", "mailto:admins")
    refused = api.delete(f"{ENDPOINTS}/{email_id}")
    assert refused.status_code == 409 and "disable" in refused.json["error"]["message"]
    assert api.put(f"{ENDPOINTS}/{email_id}/disable").json["is_enabled"] is False
    bad = api.patch(f"{ENDPOINTS}/{email_id}", json={"url": "https://hooks.example/"})
    assert bad.status_code == 422


def test_a_test_email_goes_to_each_admin(api: FlaskClient, database: Database) -> None:
    with database.session_scope() as db:
        email_id = ensure_default_email_endpoint(db).id
    queued = api.post(f"{ENDPOINTS}/{email_id}/test").json
    assert queued["queued"] == 1
    assert queued["deliveries"][0]["channel"] == "email"
    assert queued["deliveries"][0]["recipient_user_id"] is not None


def test_rotation_returns_the_new_secret_once(api: FlaskClient, receiver: Receiver) -> None:
    created = _webhook(api, receiver)
    rotated = api.post(f"{ENDPOINTS}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    ends = datetime.fromisoformat(rotated.json["secret_rotation_ends_at"])
    assert timedelta(hours=23) < ends - datetime.now(UTC) <= timedelta(hours=24)
    text = api.get(f"{ENDPOINTS}/{created['id']}").get_data(as_text=True)
    assert new not in text and created["secret"] not in text


def test_cookie_writes_need_csrf_and_strangers_get_401(
    app: Flask, admin: Admin, receiver: Receiver, database: Database
) -> None:
    browser = app.test_client()
    csrf = login(browser, admin)
    body = {"name": "ops", "channel": "webhook", "url": receiver.url()}
    refused = browser.post(ENDPOINTS, json=body)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
    created = browser.post(ENDPOINTS, json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201
    endpoint_url = f"{ENDPOINTS}/{created.json['id']}"
    for method, url in [
        ("patch", endpoint_url),
        ("put", f"{endpoint_url}/disable"),
        ("post", f"{endpoint_url}/test"),
        ("post", f"{endpoint_url}/rotate-secret"),
        ("delete", endpoint_url),
        ("post", f"{DELIVERIES}/replay-failed"),
    ]:
        assert getattr(browser, method)(url, json={}).status_code == 403, (method, url)
    stranger = app.test_client()
    for url in (ENDPOINTS, DELIVERIES, endpoint_url):
        assert stranger.get(url).status_code == 401
    assert stranger.post(ENDPOINTS, json=body).status_code == 401
    with database.session_scope() as db:
        assert db.query(Delivery).count() == 0


@contextmanager
def _kicking_api(
    app_config: dict[str, Any], token: str, kick: Callable[[], object]
) -> Iterator[FlaskClient]:
    """An API client of an app given ``kick`` as its NOTIFIER_DELIVERY_KICK."""
    application = create_app({**app_config, "NOTIFIER_DELIVERY_KICK": kick})
    try:
        api = application.test_client()
        api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        yield api
    finally:
        application.extensions["notifier"].state(application).database.dispose()


def test_a_configured_kick_starts_a_dispatcher_after_each_commit_that_queued_deliveries(
    app_config: dict[str, Any], database: Database, token: str, receiver: Receiver
) -> None:
    kicks: list[int] = []
    kicked = threading.Semaphore(0)

    def kick() -> None:  # what a host does with Celery: send notifier.dispatch_deliveries
        kicks.append(dispatch_due(database, LOCAL).total)
        kicked.release()

    with _kicking_api(app_config, token, kick) as api:
        created = _webhook(api, receiver)
        assert kicks == []  # creating an endpoint queues nothing
        assert api.post(f"{ENDPOINTS}/{created['id']}/test").status_code == 202
        assert kicked.acquire(timeout=30)  # after the commit, on the kick's own thread
        assert kicks == [1]  # and the send went out
        [request] = receiver.requests
        assert Webhook(created["secret"]).verify(request.body, request.headers)["type"] == (
            "endpoint.test"
        )
        receiver.then(400)  # fails at once; a replay is queued work again
        api.post(f"{ENDPOINTS}/{created['id']}/test")
        assert kicked.acquire(timeout=30)
        [failed] = api.get(f"{DELIVERIES}?status=failed").json["items"]
        assert api.post(f"{DELIVERIES}/{failed['id']}/replay").status_code == 200
        assert kicked.acquire(timeout=30)
        assert kicks == [1, 1, 1] and len(receiver.requests) == 3


def test_a_slow_kick_does_not_hold_up_the_request_that_committed(
    app_config: dict[str, Any], token: str, receiver: Receiver
) -> None:
    release = threading.Event()
    calls: list[bool] = []  # per kick: whether it was released (False: it gave up waiting)
    done = threading.Semaphore(0)

    def kick() -> None:  # a broker that hangs until the test lets it go
        calls.append(release.wait(10))
        done.release()

    try:
        with _kicking_api(app_config, token, kick) as api:
            created = _webhook(api, receiver)
            for _ in range(3):  # each answered while the first kick still hangs
                assert api.post(f"{ENDPOINTS}/{created['id']}/test").status_code == 202
            assert calls == []  # no kick has returned yet
            release.set()
            assert done.acquire(timeout=30) and done.acquire(timeout=30)
            # The two commits made while the first kick ran folded into one kick after it.
            assert not done.acquire(timeout=0.5)
            assert calls == [True, True]
    finally:
        release.set()


def test_a_kick_that_fails_is_logged_and_the_request_succeeds(
    app_config: dict[str, Any], token: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    def kick() -> None:
        raise ConnectionError("the broker is down")

    with _kicking_api(app_config, token, kick) as api:
        created = _webhook(api, receiver)
        with caplog.at_level(logging.ERROR, logger="notifier"):
            assert api.post(f"{ENDPOINTS}/{created['id']}/test").status_code == 202
            deadline = time.monotonic() + 30  # logged on the kick's thread
            while "could not start a dispatcher" not in caplog.text:
                assert time.monotonic() < deadline, "the failed kick was not logged"
                time.sleep(0.05)
        assert "the broker is down" in caplog.text


def test_a_kick_that_is_not_callable_is_refused_at_start(app_config: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="NOTIFIER_DELIVERY_KICK must be a callable"):
        create_app({**app_config, "NOTIFIER_DELIVERY_KICK": "notifier.dispatch_deliveries"})


ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def test_pagerduty_and_apprise_endpoints_keep_their_credentials_hidden(
    api: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = api.post(
        ENDPOINTS, json={"name": "on call", "channel": "pagerduty", "routing_key": ROUTING_KEY}
    )
    assert created.status_code == 201, created.json
    assert created.json["secret"] is None and created.json["has_secret"] is True
    assert created.json["display_url"] == "https://events.pagerduty.com/v2/enqueue"
    location = f"{ENDPOINTS}/{created.json['id']}"
    new_key = "N3WK3Y" + "0" * 26
    changed = api.patch(location, json={"routing_key": new_key})
    assert changed.status_code == 200
    apprise_url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123"
    phones = api.post(ENDPOINTS, json={"name": "phones", "channel": "apprise", "url": apprise_url})
    assert phones.status_code == 201, phones.json
    assert phones.json["display_url"] == "tgram://…"
    for response in (created, changed, phones, api.get(ENDPOINTS), api.get(location)):
        text = response.get_data(as_text=True)
        assert ROUTING_KEY not in text and new_key not in text and "AAHdqTcv" not in text
    assert ROUTING_KEY not in caplog.text and new_key not in caplog.text
    assert "AAHdqTcv" not in caplog.text
    assert api.post(f"{location}/rotate-secret").status_code == 409  # PATCH changes a key


def test_pagerduty_and_apprise_bad_input_gets_the_error_shape(api: FlaskClient) -> None:
    no_key = api.post(ENDPOINTS, json={"name": "pd", "channel": "pagerduty"})
    assert no_key.status_code == 422 and "routing_key" in no_key.get_data(as_text=True)
    short = api.post(ENDPOINTS, json={"name": "pd", "channel": "pagerduty", "routing_key": "x"})
    assert short.status_code == 422
    unknown = api.post(ENDPOINTS, json={"name": "a", "channel": "apprise", "url": "nonsense://x"})
    assert unknown.status_code == 422 and "Apprise" in unknown.get_data(as_text=True)
    no_url = api.post(ENDPOINTS, json={"name": "w", "channel": "webhook"})
    assert no_url.status_code == 422
