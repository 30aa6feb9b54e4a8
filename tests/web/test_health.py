"""Job health as admins see it: held-back markers and counts on the page, the API and /metrics."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from notifier import AlertType, Database, Severity, platform_alert_service, symptom_of
from tests.web.conftest import API
from tests.web.test_metrics import TOKEN, scrape, value


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Metrics on, behind a token."""
    return {**app_config, "NOTIFIER_METRICS_TOKEN": TOKEN}


def _root_and_symptom(database: Database) -> tuple[int, int]:
    with database.session_scope() as db:
        root, _ = platform_alert_service.create_or_increment_alert(
            db,
            alert_type=AlertType.CAPACITY,
            severity=Severity.CRITICAL,
            title="Queue imports has no consumer",
            fingerprint="queue:no-consumer:imports",
            explains="queue:imports",
        )
        with symptom_of(db, ["queue:imports"]):
            symptom, _ = platform_alert_service.create_or_increment_alert(
                db, alert_type=AlertType.SYSTEM, severity=Severity.ERROR, title="Missed run"
            )
        return root.id, symptom.id


def test_the_api_page_and_metrics_show_what_is_held_back(
    database: Database, api: FlaskClient, browser: tuple[FlaskClient, str], client: FlaskClient
) -> None:
    root, symptom = _root_and_symptom(database)
    found = api.get(f"{API}/alerts/{symptom}").get_json()
    assert found["held_back_by_id"] == root
    cause = api.get(f"{API}/alerts/{root}").get_json()
    assert (cause["explains"], cause["held_back_count"]) == ("queue:imports", 1)
    assert api.get(f"{API}/alerts/stats").get_json()["held_back_alerts"] == 1

    page = browser[0].get("/admin/notifications?tab=alerts").get_data(as_text=True)
    assert "Held back by Queue imports has no consumer" in page
    assert "Holds back 1 alert(s)" in page

    assert value(scrape(client), "notifier_held_back_alerts") == 1
