"""Acknowledge and snooze through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from notifier.types import utcnow
from tests.web.conftest import API, Admin

ALERTS = f"{API}/alerts"
NEW = {"alert_type": "database", "severity": "critical", "title": "Primary down"}


def _iso(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat().replace("+00:00", "Z")


def test_acknowledge_shows_who_and_when_and_can_be_withdrawn(
    api: FlaskClient, admin: Admin
) -> None:
    alert = api.post(ALERTS, json=NEW).json
    assert alert["acknowledged_at"] is None and alert["acknowledged_by_user_id"] is None
    url = f"{ALERTS}/{alert['id']}/acknowledge"
    acked = api.put(url)
    assert acked.status_code == 200
    assert acked.json["acknowledged_by_user_id"] == admin.id
    assert acked.json["acknowledged_at"].endswith("+00:00")
    assert api.put(url).json["acknowledged_at"] == acked.json["acknowledged_at"]
    assert api.get(ALERTS, query_string={"acknowledged": "true"}).json["total"] == 1
    assert api.get(ALERTS, query_string={"acknowledged": "false"}).json["total"] == 0
    assert api.get(f"{ALERTS}/stats").json["acknowledged_alerts"] == 1
    # Snoozed as well: counted as snoozed, not among the active acknowledged ones.
    api.put(f"{ALERTS}/{alert['id']}/snooze", json={"until": _iso(timedelta(hours=1))})
    stats = api.get(f"{ALERTS}/stats").json
    assert (stats["acknowledged_alerts"], stats["snoozed_alerts"]) == (0, 1)
    api.delete(f"{ALERTS}/{alert['id']}/snooze")
    assert api.get(f"{ALERTS}/stats").json["acknowledged_alerts"] == 1
    withdrawn = api.delete(url)
    assert withdrawn.status_code == 200 and withdrawn.json["acknowledged_at"] is None
    assert api.put(f"{ALERTS}/999999/acknowledge").status_code == 404
    api.put(f"{ALERTS}/{alert['id']}/resolve", json={"resolution_notes": "failed over"})
    for response in (api.put(url), api.delete(url)):
        assert response.status_code == 409 and response.json["error"]["code"] == "conflict"


def test_snooze_hides_the_alert_until_the_time_and_unsnooze_brings_it_back(
    api: FlaskClient,
) -> None:
    alert = api.post(ALERTS, json=NEW).json
    url = f"{ALERTS}/{alert['id']}/snooze"
    until = _iso(timedelta(hours=4))
    snoozed = api.put(url, json={"until": until})
    assert snoozed.status_code == 200
    assert snoozed.json["snoozed_until"].startswith(until[:16])
    stats = api.get(f"{ALERTS}/stats").json
    assert (stats["active_alerts"], stats["critical_alerts"], stats["snoozed_alerts"]) == (0, 0, 1)
    assert api.get(ALERTS).json["total"] == 0
    [listed] = api.get(ALERTS, query_string={"snoozed": "true"}).json["items"]
    assert listed["id"] == alert["id"]
    # New occurrences count while snoozed; a rise in severity would end the snooze.
    again = api.post(ALERTS, json=NEW).json
    assert again["occurrence_count"] == 2 and again["snoozed_until"] is not None
    back = api.delete(url)
    assert back.status_code == 200 and back.json["snoozed_until"] is None
    assert api.get(ALERTS).json["total"] == 1


def test_snooze_refuses_a_time_past_too_far_or_without_an_offset(api: FlaskClient) -> None:
    alert = api.post(ALERTS, json=NEW).json
    url = f"{ALERTS}/{alert['id']}/snooze"
    cases = {
        _iso(timedelta(minutes=-1)): "must be in the future",
        _iso(timedelta(days=31)): "must be at most 30 days away",
    }
    for until, why in cases.items():
        response = api.put(url, json={"until": until})
        assert response.status_code == 422
        assert response.json["error"]["code"] == "validation_error"
        assert response.json["error"]["details"] == {"until": why}
    for body in (
        {},
        {"until": "tomorrow"},
        {"until": "2030-01-01T10:00:00"},  # no offset: which zone?
        {"until": 1893456000},
        {"until": _iso(timedelta(hours=1)), "extra": 1},
    ):
        response = api.put(url, json=body)
        assert response.status_code == 422, body
        assert response.json["error"]["code"] == "validation_error"
    assert api.get(f"{ALERTS}/{alert['id']}").json["snoozed_until"] is None


def test_cookie_writes_need_the_csrf_token(browser: tuple[FlaskClient, str]) -> None:
    client, csrf = browser
    alert = client.post(ALERTS, json=NEW, headers={"X-CSRF-Token": csrf}).json
    for method, path, body in (
        ("put", "acknowledge", None),
        ("put", "snooze", {"until": _iso(timedelta(hours=1))}),
    ):
        call = getattr(client, method)
        refused = call(f"{ALERTS}/{alert['id']}/{path}", json=body)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
        done = call(f"{ALERTS}/{alert['id']}/{path}", json=body, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200
