"""The notification endpoints, as an API client sees them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask.testing import FlaskClient

from notifier import admin_notification_service
from notifier.db import Database
from notifier.models import AdminNotification
from tests.web.conftest import API, Admin

NEW = {"type": "import_failure", "title": "Import failed", "message": "bad csv"}


def _create(api: FlaskClient, **fields: object) -> dict[str, object]:
    response = api.post(API, json={**NEW, **fields})
    assert response.status_code == 201, response.json
    body = response.json
    assert isinstance(body, dict)
    return body


def _error(response: object) -> dict[str, object]:
    body = response.json  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


def test_create_returns_every_field_and_location(api: FlaskClient) -> None:
    response = api.post(
        API,
        json={
            **NEW,
            "priority": "high",
            "action_required": True,
            "action_url": "/admin/notifications?store_id=5",
            "notification_metadata": {"job_id": 7, "nested": {"a": [1, 2]}},
            "store_id": 5,
        },
    )
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == f"{API}/{body['id']}"
    assert body["priority"] == "high" and body["type"] == "import_failure"
    assert body["notification_metadata"] == {"job_id": 7, "nested": {"a": [1, 2]}}
    assert body["is_read"] is False and body["read_at"] is None and body["store_id"] == 5
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert body["created_at"].endswith("+00:00")
    assert set(body) == {c.name for c in AdminNotification.__table__.columns}
    assert api.get(response.headers["Location"]).json == body


def test_dedup_key_returns_the_existing_notification_with_200(
    api: FlaskClient, database: Database
) -> None:
    first = _create(api, dedup_key="job-7")
    again = api.post(API, json={**NEW, "title": "other", "dedup_key": "job-7"})
    assert again.status_code == 200
    assert again.json == first
    with database.session_scope() as db:
        assert db.query(AdminNotification).count() == 1


def test_list_filters_pages_and_envelope(api: FlaskClient) -> None:
    for i in range(5):
        _create(api, title=f"n{i}", priority="high" if i % 2 else "low", store_id=i)
    page = api.get(API, query_string={"priority": "low", "limit": 2}).json
    assert page["total"] == 3 and page["skip"] == 0 and page["limit"] == 2
    assert [item["title"] for item in page["items"]] == ["n4", "n2"]
    assert (
        api.get(API, query_string={"priority": "low", "skip": 2}).json["items"][0]["title"] == "n0"
    )
    assert api.get(API, query_string={"store_id": 3}).json["total"] == 1
    assert api.get(API, query_string={"is_read": "false"}).json["total"] == 5
    assert api.get(API, query_string={"is_read": "true"}).json["total"] == 0
    assert api.get(API, query_string={"type": "system_info"}).json["total"] == 0


def test_recent_unread_count_mark_read_and_mark_all(api: FlaskClient, admin: Admin) -> None:
    ids = [_create(api, title=f"n{i}")["id"] for i in range(3)]
    assert api.get(f"{API}/unread-count").json == {"unread_count": 3, "unread_count_exact": True}
    recent = api.get(f"{API}/recent", query_string={"limit": 2}).json
    assert recent["unread_count"] == 3 and [n["id"] for n in recent["items"]] == ids[:0:-1]

    read = api.put(f"{API}/{ids[0]}/read")
    assert read.status_code == 200
    assert read.json["is_read"] is True and read.json["read_by_user_id"] == admin.id
    again = api.put(f"{API}/{ids[0]}/read")
    assert again.json["read_at"] == read.json["read_at"]  # idempotent: first read kept
    assert api.get(f"{API}/unread-count").json == {"unread_count": 2, "unread_count_exact": True}

    assert api.put(f"{API}/mark-all-read").json == {"marked": 2}
    assert api.put(f"{API}/mark-all-read").json == {"marked": 0}
    assert api.get(f"{API}/recent").json == {
        "items": [],
        "unread_count": 0,
        "unread_count_exact": True,
    }


def test_delete_then_gone(api: FlaskClient) -> None:
    note = _create(api)
    response = api.delete(f"{API}/{note['id']}")
    assert response.status_code == 204 and response.data == b""
    for response in (
        api.get(f"{API}/{note['id']}"),
        api.delete(f"{API}/{note['id']}"),
        api.put(f"{API}/{note['id']}/read"),
    ):
        assert response.status_code == 404
        assert _error(response)["code"] == "not_found"


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"type": "nope"}, "type"),
        ({"priority": "urgent"}, "priority"),
        ({"colour": "red"}, "colour"),
        ({"title": 5}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"message": "x" * 10_001}, "message"),
        ({"store_id": "5"}, "store_id"),
        ({"store_id": 2**40}, "store_id"),
        ({"action_required": "yes"}, "action_required"),
        ({"notification_metadata": [1, 2]}, "notification_metadata"),
        ({"notification_metadata": "{}"}, "notification_metadata"),
        ({"notification_metadata": {"k": "x" * 17_000}}, "notification_metadata"),
        ({"action_url": "javascript:alert(1)"}, "action_url"),
        ({"action_url": "data:text/html,<script>"}, "action_url"),
        ({"action_url": "//evil.example/x"}, "action_url"),
        ({"action_url": "ftp://example.com"}, "action_url"),
    ],
)
def test_validation_names_each_bad_field(
    api: FlaskClient, database: Database, fields: dict[str, object], bad: str
) -> None:
    response = api.post(API, json={**NEW, **fields})
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "validation_error"
    assert isinstance(error["details"], dict) and bad in error["details"]
    with database.session_scope() as db:
        assert db.query(AdminNotification).count() == 0


def test_several_bad_fields_are_reported_together(api: FlaskClient) -> None:
    response = api.post(API, json={"type": "x", "title": "", "message": 3, "extra": 1})
    assert set(_error(response)["details"]) == {"type", "title", "message", "extra"}  # type: ignore[arg-type]


def test_missing_required_fields(api: FlaskClient) -> None:
    response = api.post(API, json={})
    assert set(_error(response)["details"]) == {"type", "title", "message"}  # type: ignore[arg-type]


def test_accepted_action_urls(api: FlaskClient) -> None:
    for url in ("/admin/x?y=1", "https://example.com/a", "http://example.com"):
        assert _create(api, action_url=url)["action_url"] == url


def test_malformed_json_is_400(api: FlaskClient) -> None:
    response = api.post(API, data=b'{"type": ', content_type="application/json")
    assert response.status_code == 400 and _error(response)["code"] == "bad_request"
    response = api.post(API, data=b'{"title": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400


def test_not_json_is_415(api: FlaskClient) -> None:
    response = api.post(API, data={"type": "system_info"})
    assert response.status_code == 415 and _error(response)["code"] == "unsupported_media_type"


def test_body_over_64_kib_is_413(api: FlaskClient) -> None:
    response = api.post(API, json={**NEW, "message": "x" * (65 * 1024)})
    assert response.status_code == 413 and _error(response)["code"] == "payload_too_large"


def test_non_object_body_is_422(api: FlaskClient) -> None:
    response = api.post(API, json=[1, 2])
    assert response.status_code == 422 and "body" in _error(response)["details"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 201},
        {"skip": -1},
        {"limit": "many"},
        {"priority": "urgent"},
        {"is_read": "maybe"},
        {"unknown": "1"},
    ],
)
def test_bad_query_is_422(api: FlaskClient, query: dict[str, object]) -> None:
    response = api.get(API, query_string=query)
    assert response.status_code == 422
    assert set(_error(response)["details"]) == set(query)  # type: ignore[arg-type]


def test_unknown_route_huge_id_and_wrong_method(api: FlaskClient) -> None:
    for path in (f"{API}/nope", f"{API}/99999999999999999999", f"{API}/1/unread", "/api/v2/x"):
        response = api.get(path)
        assert response.status_code == 404 and response.mimetype == "application/json"
        assert _error(response)["code"] == "not_found"
    response = api.patch(f"{API}/unread-count")
    assert response.status_code == 405 and _error(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_hostile_strings_come_back_verbatim_as_json(api: FlaskClient) -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    note = _create(api, title=payload, message=payload, notification_metadata={payload: payload})
    response = api.get(f"{API}/{note['id']}")
    assert response.mimetype == "application/json"
    assert response.json["title"] == payload
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_nul_anywhere_in_metadata_is_refused(api: FlaskClient) -> None:
    for metadata in ({"a": ["x\x00"]}, {"k\x00": 1}, {"a": {"b": {"c": "\x00"}}}):
        response = api.post(API, json={**NEW, "notification_metadata": metadata})
        assert response.status_code == 422
        assert "NUL" in _error(response)["details"]["notification_metadata"]  # type: ignore[index]


def test_integral_json_numbers_count_as_integers(api: FlaskClient) -> None:
    assert _create(api, store_id=5.0)["store_id"] == 5
    assert api.post(API, json={**NEW, "store_id": 5.5}).status_code == 422
    assert api.post(API, json={**NEW, "store_id": True}).status_code == 422


def test_an_unexpected_failure_is_a_json_500_without_details(
    api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifier.notifications import admin_notification_service

    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("database exploded: secret connection string")

    monkeypatch.setattr(admin_notification_service, "get_unread_count", broken)
    response = api.get(f"{API}/unread-count")
    assert response.status_code == 500 and response.mimetype == "application/json"
    assert _error(response)["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)


def test_a_store_notification_links_to_its_store_list(
    api: FlaskClient, browser: tuple[FlaskClient, str], database: Database
) -> None:
    # The core stores the store id; the web builds the link (url_for), whoever created it.
    with database.session_scope() as db:
        note = admin_notification_service.create_notification(
            db, type="import_failure", title="t", message="m", store_id=5, action_required=True
        )
        given = admin_notification_service.create_notification(
            db, type="system_info", title="t", message="m", store_id=6, action_url="/x"
        )
        plain = admin_notification_service.create_notification(
            db, type="system_info", title="t", message="m"
        )
        ids = (note.id, given.id, plain.id)
    links = [api.get(f"{API}/{i}").json["action_url"] for i in ids]  # type: ignore[index]
    assert links == ["/admin/notifications?store_id=5", "/x", None]
    recent = api.get(f"{API}/recent").json["items"]  # type: ignore[index]
    assert {item["action_url"] for item in recent} == {
        "/admin/notifications?store_id=5",
        "/x",
        None,
    }
    client, _ = browser
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert 'href="/admin/notifications?store_id=5" rel="noopener noreferrer">Take action' in html
