"""The live stream: new notifications, unread counts and alert changes as Server-Sent Events.

Real database (SQLite: the per-process watcher; PostgreSQL: LISTEN/NOTIFY from triggers),
the app's own stream read chunk by chunk as a client reads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from notifier import Database, admin_notification_service, platform_alert_service
from tests.web.conftest import API


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Short heartbeats and watcher intervals, so the tests read quickly."""
    return {
        **app_config,
        "NOTIFIER_STREAM_HEARTBEAT_SECONDS": 0.2,
        "NOTIFIER_LIVE_POLL_SECONDS": 0.1,
    }


@dataclass
class Event:
    """One parsed Server-Sent Event."""

    event: str
    data: Any
    id: str | None


class Stream:
    """A client's view of an open stream: events parsed as they arrive."""

    def __init__(self, client: FlaskClient, headers: dict[str, str] | None = None) -> None:
        self.response = client.get(f"{API}/stream", headers=headers or {}, buffered=False)
        self.chunks: Iterator[bytes] = iter(self.response.response)
        self.buffer = ""
        self.last_id: str | None = None
        self.retry: int | None = None
        self.heartbeats = 0

    def _blocks(self) -> Iterator[str]:
        while "\n\n" not in self.buffer:
            self.buffer += next(self.chunks).decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        yield block

    def next_event(self, timeout: float = 10.0) -> Event:
        """The next event, skipping heartbeats (counted); fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for block in self._blocks():
                fields: dict[str, str] = {}
                for line in block.split("\n"):
                    if line.startswith(":"):
                        self.heartbeats += 1
                        continue
                    name, _, value = line.partition(": ")
                    fields[name] = value
                if "retry" in fields:
                    self.retry = int(fields["retry"])
                if "event" not in fields:
                    continue
                if "id" in fields:
                    self.last_id = fields["id"]
                return Event(fields["event"], json.loads(fields["data"]), fields.get("id"))
        raise AssertionError("no event arrived in time")

    def until(self, kind: str, timeout: float = 10.0) -> list[Event]:
        """Events up to and including the next one of ``kind``."""
        seen = []
        while True:
            event = self.next_event(timeout)
            seen.append(event)
            if event.event == kind:
                return seen

    def close(self) -> None:
        """Hang up, as a browser closing the tab does."""
        self.response.close()


def test_a_committed_notification_is_pushed_with_the_unread_count(
    api: FlaskClient, database: Database
) -> None:
    stream = Stream(api)
    try:
        assert stream.response.status_code == 200
        assert stream.response.mimetype == "text/event-stream"
        assert stream.response.headers["X-Accel-Buffering"] == "no"
        assert stream.response.headers["Cache-Control"] == "no-store"
        hello = stream.next_event()
        assert (hello.event, hello.data) == (
            "unread",
            {"unread_count": 0, "unread_count_exact": True},
        )
        assert stream.retry == 3000 and hello.id is not None

        with database.session_scope() as db:
            created = admin_notification_service.notify_critical_error(
                db, error_type="Disk", error_message="disk full"
            )
        events = stream.until("unread")
        assert [e.event for e in events] == ["notification", "unread"]
        assert events[0].data["id"] == created.id
        assert events[0].data["title"] == "Critical error: Disk"
        assert events[1].data == {"unread_count": 1, "unread_count_exact": True}
        assert events[1].id is not None and events[1].id.startswith(f"{created.id}-")
    finally:
        stream.close()


def test_marking_read_and_alert_changes_are_pushed(api: FlaskClient, database: Database) -> None:
    with database.session_scope() as db:
        note = admin_notification_service.notify_critical_error(
            db, error_type="X", error_message="y"
        )
    stream = Stream(api)
    try:
        assert stream.next_event().data == {"unread_count": 1, "unread_count_exact": True}
        assert api.put(f"{API}/{note.id}/read").status_code == 200
        assert stream.until("unread")[-1].data == {"unread_count": 0, "unread_count_exact": True}

        with database.session_scope() as db:
            alert, _ = platform_alert_service.create_or_increment_alert(
                db, alert_type="system", severity="error", title="Queue stuck", fingerprint="q"
            )
        events = stream.until("unread")
        assert [(e.event, e.data["occurrence_count"]) for e in events[:-1]] == [("alert", 1)]
        with database.session_scope() as db:
            platform_alert_service.create_or_increment_alert(
                db, alert_type="system", severity="error", title="Queue stuck", fingerprint="q"
            )
        events = stream.until("unread")
        assert [(e.event, e.data["occurrence_count"]) for e in events[:-1]] == [("alert", 2)]
        resolved = api.put(
            f"{API}/alerts/{alert.id}/resolve", json={"resolution_notes": "restarted"}
        )
        assert resolved.status_code == 200
        events = stream.until("unread")
        assert events[0].event == "alert" and events[0].data["is_resolved"] is True
    finally:
        stream.close()


def test_reconnecting_with_last_event_id_replays_what_was_missed(
    api: FlaskClient, database: Database
) -> None:
    stream = Stream(api)
    stream.next_event()
    last_id = stream.last_id
    stream.close()
    assert last_id is not None

    with database.session_scope() as db:
        first = admin_notification_service.notify_critical_error(
            db, error_type="A", error_message="a"
        )
        second = admin_notification_service.notify_store_issue(
            db, store_name="Acme", issue="late", store_id=4
        )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="warning", title="Slow", fingerprint="slow"
        )

    again = Stream(api, headers={"Last-Event-ID": last_id})
    try:
        events = again.until("unread")
        notes = [e.data for e in events if e.event == "notification"]
        assert [n["id"] for n in notes] == [first.id, second.id]
        # the link is built by the web app, as in the JSON API
        assert notes[1]["action_url"] == "/admin/notifications?store_id=4"
        assert [e.data["title"] for e in events if e.event == "alert"] == ["Slow"]
        assert events[-1].data == {"unread_count": 2, "unread_count_exact": True}
    finally:
        again.close()

    # Without Last-Event-ID: only the current count, nothing replayed.
    fresh = Stream(api)
    try:
        assert [e.event for e in fresh.until("unread")] == ["unread"]
    finally:
        fresh.close()


def test_quiet_streams_get_heartbeats_and_end_for_reauthentication(
    app: Flask, api: FlaskClient
) -> None:
    app.config["NOTIFIER_STREAM_MAX_SECONDS"] = 1.0
    stream = Stream(api)
    stream.next_event()
    started = time.monotonic()
    rest = b"".join(stream.chunks).decode()  # ends by itself
    assert time.monotonic() - started < 5
    assert rest.count(": heartbeat") >= 2
    assert app.extensions["notifier"].state(app).hub.open_streams == 0


def test_the_stream_needs_an_admin(client: FlaskClient) -> None:
    response = client.get(f"{API}/stream")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_cookie_session_opens_the_stream(browser: tuple[FlaskClient, str]) -> None:
    client, _csrf = browser
    stream = Stream(client)
    try:
        assert stream.next_event().event == "unread"
    finally:
        stream.close()


def test_a_full_process_answers_503_so_clients_poll(app: Flask, api: FlaskClient) -> None:
    app.extensions["notifier"].state(app).hub.max_streams = 1
    stream = Stream(api)
    try:
        stream.next_event()
        refused = api.get(f"{API}/stream")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "30"
        assert refused.get_json()["error"]["code"] == "service_unavailable"
    finally:
        stream.close()


@pytest.mark.parametrize(
    ("headers", "query", "field"),
    [
        ({"Last-Event-ID": "2147483648-0"}, {}, "Last-Event-ID"),  # past PostgreSQL's integer
        ({}, {"since": "1-99999999999999999999"}, "since"),  # past the year 9999
        ({}, {"since": "12"}, "since"),
        ({"Last-Event-ID": "1-x"}, {"since": "1-1"}, "Last-Event-ID"),
    ],
)
def test_a_position_the_stream_never_gave_is_422(
    app: Flask,
    api: FlaskClient,
    headers: dict[str, str],
    query: dict[str, str],
    field: str,
) -> None:
    response = api.get(f"{API}/stream", headers=headers, query_string=query)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and list(error["details"]) == [field]
    # refused before it took one of the process's stream slots
    assert app.extensions["notifier"].state(app).hub.open_streams == 0


def test_the_last_positions_in_range_still_replay(api: FlaskClient) -> None:
    stream = Stream(api, headers={"Last-Event-ID": "2147483647-253402300799999999"})
    try:
        assert stream.response.status_code == 200
        assert stream.next_event().event == "unread"
    finally:
        stream.close()
