"""Job health on the web: the page, ``GET .../health/schedule`` and the schedule's gauge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from notifier import Database, utcnow
from notifier.health import EntrySpec, beat_ticked, run_finished, run_started, sync_entries
from tests.web.conftest import API, Admin, login
from tests.web.test_metrics import TOKEN, scrape, value

XSS = '<script>alert("x")</script>'


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Metrics on, behind a token."""
    return {**app_config, "NOTIFIER_METRICS_TOKEN": TOKEN}


def _schedule(database: Database) -> None:
    now = utcnow()
    specs = [
        EntrySpec(
            name=name,
            task="jobs.run",
            schedule_text=text,
            period_seconds=60,
            grace_seconds=60,
            first_due_at=now + due,
        )
        for name, text, due in (
            ("nightly-import", "freq: 1.00 minute", timedelta(seconds=30)),
            (f"missed {XSS}", "crontab: 0 4 * * *", timedelta(minutes=-10)),
        )
    ]
    with database.session_scope() as db:
        sync_entries(db, specs, now=now - timedelta(minutes=11))
        beat_ticked(db, stale_after_seconds=360, at=now)
        run_started(db, "nightly-import", task_id="t-1", next_due_at=now + timedelta(seconds=60))
        run_finished(db, "nightly-import", task_id="t-1", state="SUCCESS")


def test_the_api_lists_entries_with_their_state_and_beat(
    api: FlaskClient, database: Database
) -> None:
    _schedule(database)
    response = api.get(f"{API}/health/schedule")
    assert response.status_code == 200
    body = response.json
    assert body["scheduler"]["state"] == "running"
    states = {entry["name"]: entry for entry in body["entries"]}
    assert states["nightly-import"]["state"] == "ok"
    assert states["nightly-import"]["last_task_id"] == "t-1"
    assert states["nightly-import"]["last_success_at"] is not None
    assert states[f"missed {XSS}"]["state"] == "missed"
    assert states[f"missed {XSS}"]["last_started_at"] is None
    assert api.get(f"{API}/health/schedule?x=1").status_code == 422


def test_the_api_needs_credentials(client: FlaskClient) -> None:
    response = client.get(f"{API}/health/schedule")
    assert response.status_code == 401 and response.json["error"]


def test_the_page_shows_each_entry_escaped(
    client: FlaskClient, admin: Admin, database: Database
) -> None:
    assert client.get("/admin/health").status_code in (302, 303)
    _schedule(database)
    login(client, admin)
    page = client.get("/admin/health").get_data(as_text=True)
    assert "Celery beat is running" in page
    assert 'data-entry="nightly-import" data-state="ok"' in page
    assert XSS not in page and "&lt;script&gt;" in page
    assert 'href="/admin/health" aria-current="page">Job health' in page


def test_metrics_carry_each_entry_last_success(client: FlaskClient, database: Database) -> None:
    _schedule(database)
    samples = scrape(client)
    assert value(
        samples, "notifier_schedule_last_success_timestamp_seconds", entry="nightly-import"
    ) == pytest.approx(utcnow().timestamp(), abs=30)
    assert (
        value(samples, "notifier_schedule_last_success_timestamp_seconds", entry=f"missed {XSS}")
        == 0
    )
