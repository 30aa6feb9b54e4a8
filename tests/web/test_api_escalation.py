"""The escalation policy API, the alerts' owner filter and the endpoints' owner filter."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import API

POLICIES = f"{API}/escalation-policies"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Loopback endpoint URLs (a dev and test setting)."""
    return app_config | {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": True}


def _hook(api: FlaskClient, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "channel": "webhook", "url": f"http://127.0.0.1:9/{name}"} | fields
    response = api.post(f"{API}/endpoints", json=body)
    assert response.status_code == 201, response.json
    return dict(response.json)


def test_policies_are_created_read_changed_and_deleted(api: FlaskClient) -> None:
    pager = _hook(api, "pager")
    body = {
        "name": "Imports on call",
        "severity": "critical",
        "owner": "team-imports",
        "steps": [
            {"after_minutes": 10, "episode": True},
            {"after_minutes": 20, "endpoint_ids": [pager["id"]]},
        ],
        "repeat": 2,
    }
    created = api.post(POLICIES, json=body)
    assert created.status_code == 201
    policy = created.json
    assert created.headers["Location"].endswith(f"/escalation-policies/{policy['id']}")
    assert policy["steps"][1] == {
        "after_minutes": 20,
        "endpoint_ids": [pager["id"]],
        "user_ids": [],
        "episode": False,
    }
    assert api.get(f"{POLICIES}/{policy['id']}").json == policy
    assert [p["id"] for p in api.get(POLICIES).json["items"]] == [policy["id"]]

    changed = api.patch(
        f"{POLICIES}/{policy['id']}", json={"owner": None, "is_enabled": False, "repeat": 0}
    )
    assert changed.status_code == 200
    assert (changed.json["owner"], changed.json["is_enabled"], changed.json["repeat"]) == (
        None,
        False,
        0,
    )
    assert changed.json["steps"] == policy["steps"]

    assert api.delete(f"{POLICIES}/{policy['id']}").status_code == 204
    assert api.get(f"{POLICIES}/{policy['id']}").status_code == 404
    assert api.delete(f"{POLICIES}/{policy['id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severity": "dire"}, "severity"),
        ({"steps": []}, "steps"),
        ({"steps": [{"after_minutes": 0, "episode": True}]}, "steps"),
        ({"steps": [{"after_minutes": 5}]}, "steps"),
        ({"steps": [{"after_minutes": 5, "endpoint_ids": [4242]}]}, "steps"),
        ({"steps": [{"after_minutes": 5, "episode": True, "pager": 1}]}, "steps"),
        ({"repeat": 101}, "repeat"),
        ({"owner": "  "}, "owner"),
        ({"name": None}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_policy_gets_a_422_naming_the_field(
    api: FlaskClient, change: dict[str, Any], field: str
) -> None:
    body = {
        "name": "On call",
        "severity": "critical",
        "steps": [{"after_minutes": 5, "episode": True}],
    }
    response = api.post(POLICIES, json=body | change)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]


def test_a_policy_change_refuses_null_where_null_means_nothing(api: FlaskClient) -> None:
    body = {
        "name": "On call",
        "severity": "critical",
        "steps": [{"after_minutes": 5, "episode": True}],
    }
    policy = api.post(POLICIES, json=body).json
    response = api.patch(f"{POLICIES}/{policy['id']}", json={"steps": None})
    assert response.status_code == 422
    assert (
        api.patch(
            f"{POLICIES}/{policy['id']}", data="{", content_type="application/json"
        ).status_code
        == 400
    )


def test_alerts_filter_by_owner_and_carry_owner_and_runbook(api: FlaskClient) -> None:
    runbook = "https://runbooks.example/imports"
    for title, owner in (("Import broken", "team-imports"), ("Sync broken", "team-sync")):
        created = api.post(
            f"{API}/alerts",
            json={
                "alert_type": "system",
                "severity": "error",
                "title": title,
                "owner": owner,
                "runbook": runbook,
            },
        )
        assert created.status_code == 201
        assert (created.json["owner"], created.json["runbook"]) == (owner, runbook)
    listed = api.get(f"{API}/alerts", query_string={"owner": "team-imports"}).json
    assert [a["title"] for a in listed["items"]] == ["Import broken"]
    assert listed["total"] == 1
    bad = api.post(
        f"{API}/alerts",
        json={
            "alert_type": "system",
            "severity": "error",
            "title": "x",
            "runbook": "javascript:alert(1)",
        },
    )
    assert bad.status_code == 422 and "runbook" in bad.json["error"]["details"]


def test_endpoints_keep_an_owner_filter(api: FlaskClient) -> None:
    hook = _hook(api, "imports", owners=["team-imports"])
    assert hook["owners"] == ["team-imports"]
    changed = api.patch(f"{API}/endpoints/{hook['id']}", json={"owners": []})
    assert changed.status_code == 200 and changed.json["owners"] == []
    assert api.patch(f"{API}/endpoints/{hook['id']}", json={"owners": [""]}).status_code == 422
