"""Lists at scale: keyset cursors and skip/limit; totals capped at 10,000, unread at 1,000."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert

from notifier import Database
from notifier.keyset import TOTAL_CAP, UNREAD_CAP
from notifier.models import AdminNotification, PlatformAlert
from notifier.types import utcnow
from tests.web.conftest import API
from tests.web.test_stream import Stream


def _bulk(database: Database, count: int, *, same_time: bool = False, unread: bool = False) -> None:
    """``count`` notifications, every other one read (``unread``: none read); with
    ``same_time`` they all share one timestamp (ties)."""
    now = utcnow()
    rows = [
        {
            "type": "system_info",
            "priority": "normal",
            "title": f"n{i}",
            "message": "m",
            "is_read": not unread and i % 2 == 0,
            "action_required": False,
            "notification_metadata": {},
            "created_at": now if same_time else now - timedelta(seconds=i),
        }
        for i in range(count)
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(AdminNotification.__table__), rows)


def test_cursor_pages_walk_every_row_once_in_order(api: FlaskClient, database: Database) -> None:
    _bulk(database, 23, same_time=True)  # ties on created_at: the id decides
    seen: list[int] = []
    cursor = None
    while True:
        query = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = api.get(API, query_string=query).json
        assert page["total"] == 23 and page["total_exact"] is True
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 23
    # skip/limit still works and agrees with the cursor walk
    by_skip = api.get(API, query_string={"skip": 10, "limit": 5}).json
    assert [item["id"] for item in by_skip["items"]] == seen[10:15]
    # filters apply to cursor pages too
    unread = api.get(API, query_string={"is_read": "false", "limit": 3}).json
    following = api.get(
        API, query_string={"is_read": "false", "limit": 50, "cursor": unread["next_cursor"]}
    ).json
    ids = [i["id"] for i in unread["items"] + following["items"]]
    assert len(ids) == 11 and not any(i["is_read"] for i in following["items"])


def test_alert_cursor_follows_the_list_order(api: FlaskClient) -> None:
    for n in range(7):
        created = api.post(
            f"{API}/alerts",
            json={"alert_type": "system", "severity": "info", "title": "a", "fingerprint": str(n)},
        )
        if n % 3 == 0:
            api.put(f"{API}/alerts/{created.json['id']}/resolve", json={"resolution_notes": "x"})
    whole = [a["id"] for a in api.get(f"{API}/alerts").json["items"]]
    first = api.get(f"{API}/alerts", query_string={"limit": 4}).json
    rest = api.get(f"{API}/alerts", query_string={"cursor": first["next_cursor"]}).json
    assert [a["id"] for a in first["items"] + rest["items"]] == whole
    assert rest["next_cursor"] is None


def test_bad_cursors_are_refused_with_a_reason(api: FlaskClient, database: Database) -> None:
    _bulk(database, 3)
    cursor = api.get(API, query_string={"limit": 1}).json["next_cursor"]
    both = api.get(API, query_string={"cursor": cursor, "skip": 1})
    assert both.status_code == 422 and "cursor" in both.json["error"]["details"]
    forged = api.get(API, query_string={"cursor": "bm90LWEtY3Vyc29y"})
    assert forged.status_code == 422
    assert "next_cursor" in forged.json["error"]["details"]["cursor"]
    # an alert cursor is not a notification cursor
    assert api.get(f"{API}/alerts", query_string={"cursor": cursor}).status_code == 422


def test_totals_stop_counting_at_the_cap(
    api: FlaskClient, database: Database, browser: tuple[FlaskClient, str]
) -> None:
    _bulk(database, TOTAL_CAP + 5)
    page = api.get(API, query_string={"limit": 2}).json
    assert (page["total"], page["total_exact"]) == (TOTAL_CAP, False)
    assert page["next_cursor"] is not None
    # a filter that matches fewer than the cap counts exactly again
    read = api.get(API, query_string={"is_read": "true", "limit": 1}).json
    assert (read["total"], read["total_exact"]) == ((TOTAL_CAP + 5 + 1) // 2, True)
    client, _ = browser
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert "10,000+ in all · page 1</span>" in html
    assert 'rel="next"' in html


def test_unread_count_and_alert_total_stop_counting_at_the_cap(
    api: FlaskClient, database: Database, browser: tuple[FlaskClient, str]
) -> None:
    _bulk(database, UNREAD_CAP + 1, unread=True)
    rows = [
        {"alert_type": "system", "severity": "info", "title": "a", "fingerprint": f"f{i}"}
        for i in range(TOTAL_CAP + 1)
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(PlatformAlert.__table__), rows)
    capped = {"unread_count": UNREAD_CAP, "unread_count_exact": False}
    assert api.get(f"{API}/unread-count").json == capped
    recent = api.get(f"{API}/recent", query_string={"limit": 1}).json
    assert recent | {"items": []} == capped | {"items": []} and len(recent["items"]) == 1
    stats = api.get(f"{API}/alerts/stats").json
    unread = (stats["unread_notifications"], stats["unread_notifications_exact"])
    assert unread == (UNREAD_CAP, False)
    assert (stats["total_alerts"], stats["total_alerts_exact"]) == (TOTAL_CAP, False)
    assert stats["active_alerts"] == TOTAL_CAP + 1  # the open alerts' breakdown stays exact
    # the live stream's count follows the same rule
    stream = Stream(api)
    try:
        hello = stream.next_event()
        assert (hello.event, hello.data) == ("unread", capped)
    finally:
        stream.close()
    client, _ = browser
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert 'data-stat="unread"><div class="nt-card__label">Unread</div>' in html
    assert '<div class="nt-card__value">1,000+</div>' in html
    # one read leaves exactly the cap unread: exact again
    api.put(f"{API}/{recent['items'][0]['id']}/read")
    exact = {"unread_count": UNREAD_CAP, "unread_count_exact": True}
    assert api.get(f"{API}/unread-count").json == exact


def test_the_alert_list_total_leaves_out_snoozed_alerts_up_to_the_cap(
    api: FlaskClient, database: Database
) -> None:
    now = utcnow()
    later, earlier = now + timedelta(hours=1), now - timedelta(hours=1)
    snoozes = [later, later, later, earlier] + [None] * (TOTAL_CAP - 1)
    rows = [
        {"alert_type": "system", "severity": "info", "title": "a", "fingerprint": f"f{i}"}
        | {"snoozed_until": until}
        for i, until in enumerate(snoozes)
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(PlatformAlert.__table__), rows)

    def total(**query: str) -> tuple[int, bool]:
        page = api.get(f"{API}/alerts", query_string={"limit": 1, **query}).json
        return page["total"], page["total_exact"]

    # 10,003 open alerts, 3 of them snoozed now (a fourth snooze has ended): exactly the cap
    assert total() == (TOTAL_CAP, True)
    assert total(snoozed="true") == (3, True)
    assert total(severity="warning") == (0, True)
    first = api.get(f"{API}/alerts", query_string={"snoozed": "true", "limit": 1}).json
    api.delete(f"{API}/alerts/{first['items'][0]['id']}/snooze")
    # one more unsnoozed alert is past the cap; resolved alerts were never snoozed
    assert total() == (TOTAL_CAP, False)
    assert total(snoozed="true") == (2, True)
    assert total(is_resolved="true") == (0, True)


def _forged(values: list[object]) -> str:
    """A cursor of the right shape holding ``values``, as a client could craft one."""
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("", ["2026-01-01T00:00:00+00:00", 2**31]),  # past PostgreSQL's integer
        ("", ["2026-01-01T00:00:00", 1]),  # no time zone
        ("", ["0001-01-01T00:00:00+01:00", 1]),  # before the year 1 in UTC
        ("/alerts", [False, "2026-01-01T00:00:00+00:00", 2**31]),
        ("/alerts", [False, "2026-01-01T00:00:00", 1]),
    ],
)
def test_a_crafted_cursor_out_of_range_is_422(
    api: FlaskClient, path: str, values: list[object]
) -> None:
    response = api.get(f"{API}{path}", query_string={"cursor": _forged(values)})
    assert response.status_code == 422
    assert "next_cursor" in response.json["error"]["details"]["cursor"]


def test_a_cursor_at_the_edge_of_the_range_is_a_page(api: FlaskClient) -> None:
    values = ["9999-12-31T23:59:59.999999+00:00", 2**31 - 1]
    response = api.get(API, query_string={"cursor": _forged(values)})
    assert response.status_code == 200 and response.json["items"] == []
