"""The OpenAPI document: complete, generated from the schemas, and honoured (schemathesis)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.web.conftest import API


def test_document_is_openapi_3_1_and_covers_every_route(app: Flask, api: FlaskClient) -> None:
    response = api.get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.json
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    served = set()
    for rule in app.url_map.iter_rules():
        # The catch-all only turns unknown paths into the JSON 404/405; it is no operation.
        undocumented = {"notifier_api.openapi_json", "notifier_api.unmatched"}
        if rule.rule.startswith(API) and rule.endpoint not in undocumented:
            path = rule.rule.replace("<", "{").replace(">", "}")
            path = path.replace("{int:", "{")
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}  # type: ignore[operator]
    assert documented == served


def test_schemas_carry_the_validation_limits(api: FlaskClient) -> None:
    schemas = api.get(f"{API}/openapi.json").json["components"]["schemas"]
    create = schemas["NotificationCreate"]
    assert create["additionalProperties"] is False
    assert set(create["required"]) == {"type", "title", "message"}
    assert create["properties"]["title"]["maxLength"] == 200
    assert create["properties"]["message"]["maxLength"] == 10_000
    assert schemas["Priority"]["enum"] == ["low", "normal", "high", "critical"]
    error = schemas["ErrorOut"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorBody")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Endpoint URLs by the document's pattern (http or https, any host) are all accepted
    when private addresses are allowed; https-only is a deployment setting the document
    names in the field's description (tests/web/test_api_channels.py covers it)."""
    return app_config | {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": True}


def _seed(api: FlaskClient) -> None:
    # Some rows, so that ids in generated paths sometimes exist.
    for i in range(3):
        api.post(API, json={"type": "system_info", "title": f"t{i}", "message": "m"})
        api.post(
            f"{API}/alerts", json={"alert_type": "system", "severity": "info", "title": f"a{i}"}
        )
        hook = {"name": f"e{i}", "channel": "webhook", "url": f"https://hooks.example/{i}"}
        endpoint = api.post(f"{API}/endpoints", json=hook).json
        api.post(f"{API}/endpoints/{endpoint['id']}/test")
        steps = [{"after_minutes": 5 + i, "episode": True}]
        api.post(
            f"{API}/escalation-policies",
            json={"name": f"p{i}", "severity": "critical", "steps": steps},
        )


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_honours_its_document(
    app: Flask, api: FlaskClient, token: str, mode: GenerationMode
) -> None:
    """Schemathesis, bounded and deterministic: no 5xx, every response matches the document.

    (Its pytest plugin's lazy fixture loader does not run on pytest 9, so each operation's
    strategy is driven by hypothesis here directly.)
    """
    _seed(api)
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app, headers=auth)
    # A body over the API's size limit is invalid data too, refused with the documented 413
    # before it is parsed; schemathesis' default list of rejections does not name 413.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 44  # + escalation (5), retry (3), job health (3)

    for operation in operations:
        if operation.path.endswith("/stream"):
            continue  # an event stream never ends; tests/web/test_stream.py reads it
        # A cursor is opaque: any URL-safe text fits the schema, but only one the list gave
        # out is accepted (a forged one gets 422, tested in test_api_paging.py). A snooze's
        # time must lie ahead of the clock, which no schema can say (422 otherwise, tested in
        # test_api_alert_lifecycle.py). Preferences that turn a locked category off are
        # refused (422, tested in test_api_preferences.py): which categories are locked is
        # data, not schema. Those skip the check "valid data is accepted".
        opaque = any(p.name == "cursor" for p in operation.query)
        relative = operation.path.endswith("/snooze")
        locked = operation.method.upper() == "PUT" and operation.path.endswith("/preferences")
        # Which requirements an endpoint's fields have depends on its kind, which the one
        # flat document cannot say: whether an Apprise URL names one of Apprise's services
        # is Apprise's knowledge, and a PATCH's routing key is refused unless the stored
        # endpoint is PagerDuty (422, tested in test_api_channels.py).
        by_kind = operation.method.upper() in ("POST", "PATCH") and operation.path.endswith(
            ("/endpoints", "/endpoints/{endpoint_id}")
        )
        # An escalation step must name endpoints and admins that exist, and notify someone
        # (422 otherwise, tested in test_api_escalation.py): data, not schema.
        targets = "/escalation-policies" in operation.path and operation.method.upper() != "GET"
        excluded = (
            [positive_data_acceptance] if opaque or relative or locked or by_kind or targets else []
        )
        _fuzz(operation, mode, auth, excluded=excluded)


def _fuzz(operation: Any, mode: GenerationMode, auth: dict[str, str], excluded: list[Any]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=12,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=auth, excluded_checks=excluded)

    check()


def test_document_names_both_ways_to_authenticate(app: Flask, api: FlaskClient) -> None:
    document = api.get(f"{API}/openapi.json").json
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["cookieAuth"]["name"] == app.config["SESSION_COOKIE_NAME"]
