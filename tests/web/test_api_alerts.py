"""The platform alert endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

from flask.testing import FlaskClient

from notifier.models import PlatformAlert
from tests.web.conftest import API, Admin

ALERTS = f"{API}/alerts"
NEW = {"alert_type": "integration", "severity": "warning", "title": "Sync failing"}


def test_create_then_increment_by_fingerprint(api: FlaskClient) -> None:
    first = api.post(ALERTS, json={**NEW, "fingerprint": "sync:5", "affected_stores": [5]})
    assert first.status_code == 201
    assert first.headers["Location"] == f"{ALERTS}/{first.json['id']}"
    assert set(first.json) == {c.name for c in PlatformAlert.__table__.columns}
    again = api.post(
        ALERTS,
        json={**NEW, "severity": "error", "fingerprint": "sync:5", "affected_stores": [7]},
    )
    assert again.status_code == 200
    body = again.json
    assert body["id"] == first.json["id"] and body["occurrence_count"] == 2
    assert body["severity"] == "error" and body["affected_stores"] == [5, 7]
    assert api.get(f"{ALERTS}/{body['id']}").json == body


def test_list_filters_and_envelope(api: FlaskClient) -> None:
    api.post(ALERTS, json={**NEW, "fingerprint": "a"})
    api.post(ALERTS, json={**NEW, "severity": "critical", "alert_type": "database"})
    page = api.get(ALERTS, query_string={"severity": "critical"}).json
    assert page["total"] == 1 and page["items"][0]["alert_type"] == "database"
    assert page["skip"] == 0 and page["limit"] == 50
    assert api.get(ALERTS, query_string={"alert_type": "security"}).json["total"] == 0
    assert api.get(ALERTS, query_string={"is_resolved": "false"}).json["total"] == 2
    assert api.get(ALERTS, query_string={"severity": "fatal"}).status_code == 422


def test_resolve_requires_notes_and_refuses_twice(api: FlaskClient, admin: Admin) -> None:
    alert = api.post(ALERTS, json=NEW).json
    url = f"{ALERTS}/{alert['id']}/resolve"
    for body in ({}, {"resolution_notes": ""}, {"resolution_notes": "  "}):
        response = api.put(url, json=body)
        assert response.status_code == 422
        assert "resolution_notes" in response.json["error"]["details"]
    assert api.put(url, data="notes", content_type="text/plain").status_code == 415

    resolved = api.put(url, json={"resolution_notes": "restarted the sync"})
    assert resolved.status_code == 200
    body = resolved.json
    assert body["is_resolved"] is True and body["resolution_notes"] == "restarted the sync"
    assert body["resolved_by_user_id"] == admin.id and body["resolved_at"].endswith("+00:00")

    twice = api.put(url, json={"resolution_notes": "again"})
    assert twice.status_code == 409 and twice.json["error"]["code"] == "conflict"
    assert api.get(f"{ALERTS}/{alert['id']}").json["resolution_notes"] == "restarted the sync"


def test_unknown_alert_is_404(api: FlaskClient) -> None:
    assert api.get(f"{ALERTS}/12345").status_code == 404
    response = api.put(f"{ALERTS}/12345/resolve", json={"resolution_notes": "x"})
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_stats(api: FlaskClient) -> None:
    api.post(ALERTS, json={**NEW, "severity": "critical"})
    other = api.post(ALERTS, json={**NEW, "title": "Other"}).json
    api.put(f"{ALERTS}/{other['id']}/resolve", json={"resolution_notes": "done"})
    api.post(API, json={"type": "system_info", "title": "t", "message": "m"})
    stats = api.get(f"{ALERTS}/stats").json
    assert stats["active_alerts"] == 1 and stats["critical_alerts"] == 1
    assert stats["resolved_today"] == 1 and stats["total_alerts"] == 2
    assert stats["unread_notifications"] == 1
    assert stats["by_severity"]["critical"] == 1 and stats["by_type"]["integration"] == 1


def test_alert_validation(api: FlaskClient) -> None:
    response = api.post(
        ALERTS,
        json={
            "alert_type": "weather",
            "severity": "meh",
            "title": "x" * 201,
            "affected_stores": ["a"],
            "affected_systems": [""],
            "alert_metadata": [],
        },
    )
    assert response.status_code == 422
    details = response.json["error"]["details"]
    assert {"alert_type", "severity", "title", "alert_metadata"} <= {
        key.split(".")[0] for key in details
    }
    assert any(key.startswith("affected_stores") for key in details)
    assert any(key.startswith("affected_systems") for key in details)
