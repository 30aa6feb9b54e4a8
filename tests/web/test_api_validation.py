"""The API applies the core's rules (notifier/validation.py): same limits, same answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from notifier import Database, admin_notification_service
from notifier.validation import METADATA_MAX_DEPTH, TOO_DEEP
from tests.web.conftest import API, Admin, login

NEW = {"type": "import_failure", "title": "Import failed", "message": "bad csv"}
ALERT = {"alert_type": "system", "severity": "info", "title": "Disk"}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _post(api: FlaskClient, path: str, body: str) -> Any:
    return api.post(path, data=body.encode(), content_type="application/json")


@pytest.mark.parametrize("text", ["\u200b", "\ufeff", " \u200b\ufeff ", "\u202e"])
def test_invisible_text_is_blank_everywhere(api: FlaskClient, text: str) -> None:
    for field in ("title", "message", "dedup_key"):
        response = api.post(API, json={**NEW, field: text})
        assert response.status_code == 422
        assert "blank" in response.json["error"]["details"][field]
    response = api.post(f"{API}/alerts", json={**ALERT, "fingerprint": text})
    assert response.status_code == 422 and "fingerprint" in response.json["error"]["details"]
    alert = api.post(f"{API}/alerts", json=ALERT).json
    response = api.put(f"{API}/alerts/{alert['id']}/resolve", json={"resolution_notes": text})
    assert response.status_code == 422
    assert "blank" in response.json["error"]["details"]["resolution_notes"]


def test_bidi_overrides_are_removed_from_titles(api: FlaskClient) -> None:
    response = api.post(API, json={**NEW, "title": "invoice\u202egnp.exe"})
    assert response.status_code == 201 and response.json["title"] == "invoicegnp.exe"
    response = api.post(f"{API}/alerts", json={**ALERT, "title": "\u2067spoof\u2069"})
    assert response.status_code == 201 and response.json["title"] == "spoof"


@pytest.mark.parametrize(
    "url", ["https://host:99999/", "https://host:65536/x", "https://host/\x85", "/admin/\u009f"]
)
def test_bad_ports_and_c1_controls_in_links_are_refused(api: FlaskClient, url: str) -> None:
    response = api.post(API, json={**NEW, "action_url": url})
    assert response.status_code == 422
    assert "valid port" in response.json["error"]["details"]["action_url"]


@pytest.mark.parametrize(
    "body",
    [
        '{"type": "system_info", "title": "a", "title": "b", "message": "m"}',
        '{"type": "system_info", "title": "a", "message": "m",'
        ' "notification_metadata": {"k": 1, "k": 2}}',
    ],
)
def test_repeated_json_keys_are_400(api: FlaskClient, database: Database, body: str) -> None:
    response = _post(api, API, body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert "repeats the key" in response.json["error"]["message"]
    with database.session_scope() as db:
        assert admin_notification_service.page_notifications(db).total == 0


def _deep_json(depth: int) -> str:
    # Written by hand: json.dumps itself gives up near 1,000 levels.
    return '{"a":' * (depth - 1) + '{"leaf":1}' + "}" * (depth - 1)


@pytest.mark.parametrize("depth", [METADATA_MAX_DEPTH + 1, 200, 250, 10_000])
def test_deep_metadata_is_422_saying_why(api: FlaskClient, depth: int) -> None:
    body = json.dumps(NEW)[:-1] + ', "notification_metadata": ' + _deep_json(depth) + "}"
    assert len(body) < 64 * 1024  # under the body limit, so the depth is what is judged
    response = _post(api, API, body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["details"] == {"notification_metadata": TOO_DEEP}
    alert = json.dumps(ALERT)[:-1] + ', "alert_metadata": ' + _deep_json(depth) + "}"
    response = _post(api, f"{API}/alerts", alert)
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"alert_metadata": TOO_DEEP}


def test_deepest_allowed_metadata_is_stored(api: FlaskClient) -> None:
    response = api.post(API, json={**NEW, "notification_metadata": _nested(METADATA_MAX_DEPTH)})
    assert response.status_code == 201
    assert response.json["notification_metadata"] == _nested(METADATA_MAX_DEPTH)


def test_brackets_inside_strings_do_not_count_as_depth(api: FlaskClient) -> None:
    deep_text = "[{" * 500
    response = api.post(
        API, json={**NEW, "message": deep_text, "notification_metadata": {"x": deep_text}}
    )
    assert response.status_code == 201 and response.json["message"] == deep_text


def test_metadata_size_is_measured_like_the_core(api: FlaskClient, database: Database) -> None:
    text = "é" * 5000  # 10,000 bytes as stored; 30,000 if measured as \u00e9 escapes
    response = api.post(API, json={**NEW, "notification_metadata": {"text": text}})
    assert response.status_code == 201
    with database.session_scope() as db:
        note = admin_notification_service.create_notification(
            db, type="system_info", title="t", message="m", metadata={"text": text}
        )
        assert note.notification_metadata == {"text": text}
    response = api.post(API, json={**NEW, "notification_metadata": {"text": "é" * 9000}})
    assert response.status_code == 422
    assert "16384 bytes" in response.json["error"]["details"]["notification_metadata"]
    response = api.post(f"{API}/alerts", json={**ALERT, "alert_metadata": {"t": "é" * 9000}})
    assert "16384 bytes" in response.json["error"]["details"]["alert_metadata"]


def test_the_api_document_publishes_the_core_patterns(api: FlaskClient) -> None:
    from notifier.validation import SAFE_URL_PATTERN, TEXT_PATTERN

    schemas = api.get(f"{API}/openapi.json").json["components"]["schemas"]
    create = schemas["NotificationCreate"]["properties"]
    assert create["title"]["pattern"] == TEXT_PATTERN
    assert create["action_url"]["anyOf"][0]["pattern"] == SAFE_URL_PATTERN


def test_login_next_follows_the_one_url_rule(client: FlaskClient, admin: Admin) -> None:
    login(client, admin)
    for bad in ("/admin/\x85x", "//evil.example", "https://evil.example/"):
        response = client.get("/admin/login", query_string={"next": bad})
        assert response.headers["Location"] == "/admin/notifications", bad
    response = client.get("/admin/login", query_string={"next": "/admin/notifications?tab=alerts"})
    assert response.headers["Location"] == "/admin/notifications?tab=alerts"
