"""The delivery log (what admins read of the outbox) and how endpoint URLs are shown."""

from __future__ import annotations

import pytest

from notifier import Database, ValidationError
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.egress import check_url
from notifier.delivery.endpoints import display_url, endpoint_service
from notifier.delivery.log import Backlog, delivery_log
from notifier.enums import DeliveryChannel, DeliveryEvent, DeliveryStatus
from notifier.errors import DeliveryRefusedError
from notifier.models import DeliveryEndpoint
from notifier.validation import ENDPOINT_URL_RULE, endpoint_url_problem
from tests.notifier.conftest import Receiver

LOCAL = DispatchSettings(allow_private=True)


def _endpoint(database: Database, receiver: Receiver, name: str = "ops") -> int:
    with database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db, name=name, channel="webhook", url=receiver.url(), allow_private=True
        )
        return endpoint.id


def _test_event(database: Database, endpoint_id: int, times: int = 1) -> None:
    with database.session_scope() as db:
        endpoint = db.get(DeliveryEndpoint, endpoint_id)
        assert endpoint is not None
        for _ in range(times):
            endpoint_service.send_test(db, endpoint)


def test_the_log_pages_newest_first_with_filters_and_attempts(
    database: Database, receiver: Receiver
) -> None:
    ok, failing = _endpoint(database, receiver), _endpoint(database, receiver, "failing")
    _test_event(database, ok, times=2)
    _test_event(database, failing)
    # Claimed in id order: the two for ``ok`` succeed, the one for ``failing`` gets a 400.
    receiver.then(204)
    receiver.then(204)
    receiver.then(400, body=b"no")
    assert dispatch_due(database, LOCAL).counts == {"succeeded": 2, "failed": 1}

    with database.session_scope() as db:
        items, total = delivery_log.page(db, limit=2)
        assert total == 3 and len(items) == 2
        assert [d.id for d in items] == sorted((d.id for d in items), reverse=True)
        rest, _ = delivery_log.page(db, skip=2, limit=2)
        assert len(rest) == 1 and rest[0].id < items[-1].id
        failed, count = delivery_log.page(db, status="failed")
        assert count == 1 and failed[0].endpoint_id == failing
        mine, count = delivery_log.page(db, endpoint_id=ok, event_type=DeliveryEvent.ENDPOINT_TEST)
        assert count == 2 and {d.status for d in mine} == {DeliveryStatus.SUCCEEDED}
        assert delivery_log.page(db, event_type="alert.opened") == ([], 0)
        attempts = delivery_log.attempts(db, [failed[0].id, mine[0].id, 999_999])
        assert [a.response_status for a in attempts[failed[0].id]] == [400]
        assert attempts[failed[0].id][0].response_body == "no"
        assert [a.outcome for a in attempts[mine[0].id]] == ["succeeded"]
        assert attempts[999_999] == []
        assert delivery_log.get(db, failed[0].id) is not None
        assert delivery_log.get(db, 999_999) is None
        with pytest.raises(ValidationError) as refused:
            delivery_log.page(db, status="lost", event_type="nope")
        assert set(refused.value.errors) == {"status", "event_type"}


def test_backlog_counts_pending_and_failed_per_endpoint(
    database: Database, receiver: Receiver
) -> None:
    first, second = _endpoint(database, receiver), _endpoint(database, receiver, "b")
    receiver.then(410)  # gone: fails at once (and disables the endpoint)
    _test_event(database, first)
    dispatch_due(database, LOCAL)
    _test_event(database, first, times=2)
    _test_event(database, second)
    with database.session_scope() as db:
        assert delivery_log.backlog(db) == {
            first: Backlog(pending=2, failed=1),
            # its test event, and the in-app "endpoint disabled" notice about the first one
            second: Backlog(pending=2, failed=0),
        }


def _shown(channel: DeliveryChannel, url: str) -> str:
    return display_url(DeliveryEndpoint(channel=channel, url=url, name="x"))


def test_a_chat_url_shows_only_its_origin_and_last_four_characters() -> None:
    slack = "https://hooks.slack.com/services/T0SHOP/B0OPS/abcdefghijklmnopWXYZ"
    assert _shown(DeliveryChannel.SLACK, slack) == "https://hooks.slack.com/…WXYZ"
    # Too short to show any of it without showing much of it.
    assert _shown(DeliveryChannel.TEAMS, "https://t.example/abc") == "https://t.example/…"
    webhook = "https://hooks.example:8443/in/orders?token=abc#x"
    assert _shown(DeliveryChannel.WEBHOOK, webhook) == "https://hooks.example:8443/in/orders?…"
    assert _shown(DeliveryChannel.WEBHOOK, "https://h.example") == "https://h.example"
    assert _shown(DeliveryChannel.EMAIL, "mailto:admins") == "mailto:admins"


@pytest.mark.parametrize(
    "url",
    [
        "hooks.example/in",
        "//hooks.example/in",
        "https://user@hooks.example/in",
        "https://hooks.example:0/",
        "https://hooks.example/a\u202eb",
        "https://[::::]/in",
        "https://" + "a" * 500,
    ],
)
def test_endpoint_urls_follow_one_rule(url: str) -> None:
    problem = endpoint_url_problem(url)
    assert problem is not None and (ENDPOINT_URL_RULE in problem or "at most" in problem)


def test_a_malformed_bracketed_host_is_refused_by_the_engine_not_raised() -> None:
    with pytest.raises(DeliveryRefusedError, match="not valid"):
        check_url("https://[::::]/in")
    assert endpoint_url_problem("https://hooks.example:8443/in?x=1#y") is None
    assert endpoint_url_problem("http://127.0.0.1:8080/") is None  # the engine judges addresses
