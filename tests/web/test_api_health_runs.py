"""Job health in the API, /metrics and the page's two sections: overdue runs and queues."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from notifier.web.api.health_runs import health_runs_context

from notifier import Database, utcnow
from notifier.health import OverdueRun, QueueObservation, check_queues, record_heartbeat
from tests.web.conftest import API
from tests.web.test_metrics import TOKEN, scrape, value


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Metrics on, behind a token."""
    return {**app_config, "NOTIFIER_METRICS_TOKEN": TOKEN}


@pytest.fixture
def reported(database: Database) -> None:
    """One worker reporting a hung run; one queue with messages nobody consumes."""
    now = utcnow()
    run = OverdueRun(
        task_id="t-1",
        task_name="shop.<import>",
        hostname="w1@box",
        started_at=now - timedelta(minutes=20),
        limit_seconds=600,
        limit_source="floor",
        pid=12,
        arguments={"store_id": 5, "note": "<script>alert(1)</script>"},
    )
    with database.session_scope() as db:
        record_heartbeat(
            db, "w1@box", pid=1, queues=["celery"], overdue=[run], ttl=timedelta(minutes=1)
        )
        seen = [QueueObservation("celery", 0), QueueObservation("orphans", 4, "h")]
        check_queues(db, seen, now=now - timedelta(seconds=90))
        check_queues(db, seen, now=now)


def test_the_api_lists_overdue_runs_and_queues(api: FlaskClient, reported: None) -> None:
    runs = api.get(f"{API}/health/runs")
    assert runs.status_code == 200
    [run] = runs.get_json()["items"]
    assert (run["task_name"], run["hostname"], run["limit_source"]) == (
        "shop.<import>",
        "w1@box",
        "floor",
    )
    assert run["elapsed_seconds"] >= 1200
    queues = api.get(f"{API}/health/queues").get_json()["items"]
    assert [(q["name"], q["depth"], q["consumers"]) for q in queues] == [
        ("celery", 0, 1),
        ("orphans", 4, 0),
    ]
    assert queues[1]["oldest_age_seconds"] >= 90
    assert api.get(f"{API}/health/queues?x=1").status_code == 422


def test_the_api_needs_credentials(client: FlaskClient) -> None:
    assert client.get(f"{API}/health/runs").status_code == 401


def test_metrics_show_queue_depth_and_oldest_age(client: FlaskClient, reported: None) -> None:
    samples = scrape(client)
    assert value(samples, "notifier_queue_depth", queue="orphans") == 4
    assert value(samples, "notifier_queue_consumers", queue="celery") == 1
    assert value(samples, "notifier_queue_oldest_age_seconds", queue="orphans") >= 90


def test_the_page_sections_show_runs_and_unconsumed_queues_escaped(
    app: Flask, database: Database, reported: None
) -> None:
    with app.test_request_context(), database.session_scope() as db:
        context = health_runs_context(db)
        running = render_template("notifier/partials/health_running.html", **context)
        queues = render_template("notifier/partials/health_queues.html", **context)
    assert "shop.&lt;import&gt;" in running and "<script>" not in running
    assert "20m 0" in running and "w1@box" in running
    assert 'data-queue="orphans" data-unconsumed' in queues
    assert "at least 1m 3" in queues
