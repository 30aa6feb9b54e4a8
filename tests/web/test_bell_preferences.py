"""The bell and the unread count follow each admin's in-app preferences; the shared inbox
still shows everything (API and live stream)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from notifier import Database, admin_notification_service
from notifier.keyset import UNREAD_CAP
from notifier.models import AdminNotification
from tests.web.conftest import API, Admin, make_admin, make_token
from tests.web.test_stream import Stream


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **app_config,
        "NOTIFIER_STREAM_HEARTBEAT_SECONDS": 0.2,
        "NOTIFIER_LIVE_POLL_SECONDS": 0.1,
    }


def _notify(database: Database, type_: str, priority: str, title: str) -> None:
    with database.session_scope() as db:
        admin_notification_service.create_notification(
            db, type=type_, priority=priority, title=title, message="m"
        )


def _client(app: Flask, database: Database, admin: Admin) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(database, admin)}"
    return client


QUIET_BELL = {
    "rules": {
        "in_app": {
            "notification:system_info": {"mode": "off", "min_level": None},
            "notification:security_alert": {"mode": "immediate", "min_level": "critical"},
            "notification:import_failure": {"mode": "immediate", "min_level": "high"},
        }
    }
}


def test_types_turned_off_in_app_stop_lighting_that_admins_bell(
    app: Flask, api: FlaskClient, database: Database
) -> None:
    other = _client(app, database, make_admin(database, "other@example.com"))
    assert api.put(f"{API}/preferences", json=QUIET_BELL).status_code == 200
    _notify(database, "system_info", "low", "FYI")
    _notify(database, "import_failure", "normal", "small import")
    _notify(database, "import_failure", "high", "big import")
    _notify(database, "security_alert", "high", "odd login")
    _notify(database, "security_alert", "critical", "breach")  # required: always lights it
    mine = api.get(f"{API}/recent?limit=10").json
    assert [n["title"] for n in mine["items"]] == ["breach", "big import"]
    assert mine["unread_count"] == 2
    assert api.get(f"{API}/unread-count").json == {"unread_count": 2, "unread_count_exact": True}
    theirs = other.get(f"{API}/recent?limit=10").json
    assert theirs["unread_count"] == 5 and len(theirs["items"]) == 5
    # The shared inbox shows everything to everyone.
    assert api.get(API).json["total"] == 5


def test_the_live_stream_pushes_only_what_lights_this_admins_bell(
    api: FlaskClient, database: Database
) -> None:
    assert api.put(f"{API}/preferences", json=QUIET_BELL).status_code == 200
    _notify(database, "system_info", "low", "before")
    stream = Stream(api)
    try:
        assert stream.next_event().data == {"unread_count": 0, "unread_count_exact": True}
        _notify(database, "system_info", "low", "FYI")
        _notify(database, "import_failure", "high", "big import")
        events = stream.until("unread")
        while events[-1].data != {"unread_count": 1, "unread_count_exact": True}:
            events += stream.until("unread")
        pushed = [e.data["title"] for e in events if e.event == "notification"]
        assert pushed == ["big import"]
    finally:
        stream.close()


# On PostgreSQL every read is a notice; the SQLite default's one poller sees a read past the
# cap only when the capped count changes (docs/live.md).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_past_the_unread_cap_a_read_still_reaches_a_filtered_bell(
    api: FlaskClient, database: Database
) -> None:
    background = [
        {"type": "system_info", "title": f"n{i}", "message": "m", "notification_metadata": {}}
        for i in range(UNREAD_CAP + 5)
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(AdminNotification.__table__), background)
    assert api.put(f"{API}/preferences", json=QUIET_BELL).status_code == 200
    _notify(database, "import_failure", "high", "big import")
    [mine] = api.get(f"{API}/recent?limit=5").json["items"]
    stream = Stream(api)
    try:
        assert stream.next_event().data == {"unread_count": 1, "unread_count_exact": True}
        # Site-wide the count stays "1,000+"; this admin's bell goes from 1 to 0.
        with database.session_scope() as db:  # read in another tab, say
            admin_notification_service.mark_as_read(db, mine["id"], user_id=None)
        events = stream.until("unread")
        assert events[-1].data == {"unread_count": 0, "unread_count_exact": True}
    finally:
        stream.close()
