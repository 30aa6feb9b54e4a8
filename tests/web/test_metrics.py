"""GET /metrics: Prometheus text after real traffic, protected, adding up gunicorn workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from prometheus_client.parser import text_string_to_metric_families

from notifier import Database, admin_notification_service
from notifier.delivery import DispatchSettings, endpoint_service
from notifier.delivery.dispatch import dispatch_due
from notifier.migrate import upgrade
from tests.receivers import Receiver
from tests.web.conftest import API, Admin, make_admin, page_csrf
from tests.web.test_cli import _free_port

TOKEN = "scrape-secret"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Metrics on, behind a token."""
    return {**app_config, "NOTIFIER_METRICS_TOKEN": TOKEN}


def scrape_text(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape the app as Prometheus would."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return scrape_text(response.get_data(as_text=True))


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """One sample's value, 0 when it is not there yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_scrape_counts_real_traffic(
    app: Flask, api: FlaskClient, client: FlaskClient, admin: Admin
) -> None:
    # Counters belong to the process and other tests ran before: compare before and after.
    before = scrape(client)
    for n in range(3):
        created = api.post(
            API, json={"type": "system_info", "priority": "low", "title": f"t{n}", "message": "m"}
        )
        assert created.status_code == 201
    # a repeated dedup key creates nothing, so counts nothing
    for _ in range(2):
        api.post(API, json={"type": "store_issue", "title": "s", "message": "m", "dedup_key": "k"})
    opened = api.post(
        f"{API}/alerts",
        json={"alert_type": "system", "severity": "critical", "title": "a", "fingerprint": "f"},
    )
    api.post(
        f"{API}/alerts",
        json={"alert_type": "system", "severity": "critical", "title": "a", "fingerprint": "f"},
    )
    api.post(
        f"{API}/alerts",
        json={"alert_type": "database", "severity": "warning", "title": "b", "fingerprint": "g"},
    )
    resolved = api.put(
        f"{API}/alerts/{opened.json['id']}/resolve", json={"resolution_notes": "fixed"}
    )
    assert resolved.status_code == 200
    assert client.get(API, headers={"Authorization": "Bearer ntf_wrong"}).status_code == 401
    csrf = page_csrf(client)
    form = {"email": admin.email, "password": "not it", "csrf_token": csrf}
    assert client.post("/admin/login", data=form).status_code == 401

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    created_name = "notifier_notifications_created_total"
    assert delta(created_name, type="system_info", priority="low") == 3
    assert delta(created_name, type="store_issue", priority="normal") == 1
    labels = {"alert_type": "system", "severity": "critical"}
    assert delta("notifier_alerts_opened_total", **labels) == 1
    assert delta("notifier_alerts_incremented_total", **labels) == 1
    assert delta("notifier_alerts_resolved_total", **labels) == 1
    assert delta("notifier_alerts_opened_total", alert_type="database", severity="warning") == 1
    assert delta("notifier_token_failures_total") == 1
    assert delta("notifier_login_failures_total") == 1
    # open alerts come from the database: exact, every severity present
    assert value(after, "notifier_open_alerts", severity="warning") == 1
    assert value(after, "notifier_open_alerts", severity="critical") == 0
    assert value(after, "notifier_open_alerts", severity="info") == 0
    # latency by route template, method and status (never the raw path)
    route = f"{API}/alerts/<int:alert_id>/resolve"
    count = "notifier_api_request_duration_seconds_count"
    assert delta(count, route=route, method="PUT", status="200") == 1
    assert delta(count, route=API, method="POST", status="201") == 4  # 3 + the first dedup
    assert delta(count, route=API, method="POST", status="200") == 1
    assert delta(count, route=API, method="GET", status="401") == 1
    assert (
        value(
            after,
            "notifier_api_request_duration_seconds_bucket",
            route=route,
            method="PUT",
            status="200",
            le="+Inf",
        )
        >= 1
    )


def test_a_rolled_back_notification_counts_nothing(
    app: Flask, client: FlaskClient, database: Database
) -> None:
    before = scrape(client)
    with database.sessionmaker() as db:
        admin_notification_service.notify_critical_error(db, error_type="X", error_message="y")
        db.rollback()
    with database.session_scope() as db:
        admin_notification_service.notify_critical_error(db, error_type="X", error_message="y")
    after = scrape(client)
    name = "notifier_notifications_created_total"
    labels = {"type": "critical_error", "priority": "critical"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_deliveries_by_outcome_and_what_waits_or_is_dead_after_real_sends(
    app: Flask, client: FlaskClient, database: Database, receiver: Receiver
) -> None:
    with database.session_scope() as db:
        endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    before = scrape(client)
    for status in (204, 400, 503):  # sent, refused for good, to be retried
        receiver.then(status)
        with database.session_scope() as db:
            admin_notification_service.create_notification(
                db, type="import_failure", title=f"answered {status}", message="bad row"
            )
    assert dispatch_due(database, DispatchSettings(allow_private=True)).total == 3
    assert len(receiver.requests) == 3
    after = scrape(client)
    attempts = "notifier_delivery_attempts_total"
    for outcome in ("succeeded", "failed", "retry"):
        labels = {"channel": "webhook", "outcome": outcome}
        assert value(after, attempts, **labels) - value(before, attempts, **labels) == 1
    # Read from the database at scrape: what waits for a retry, and what is dead.
    assert value(after, "notifier_deliveries", channel="webhook", status="pending") == 1
    assert value(after, "notifier_deliveries", channel="webhook", status="failed") == 1
    assert value(after, "notifier_deliveries", channel="email", status="pending") == 0


def test_metrics_need_the_token(app: Flask, client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    app.config["NOTIFIER_METRICS_TOKEN"] = None
    # off: nothing there at all
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_wrong_metrics_tokens_are_throttled_like_wrong_api_tokens(
    app_config: dict[str, Any],
) -> None:
    app = create_app({**app_config, "NOTIFIER_AUTH_FAILURES_PER_IP": 3})
    client = app.test_client()
    wrong = {"Authorization": "Bearer guess"}
    try:
        assert [client.get("/metrics", headers=wrong).status_code for _ in range(2)] == [401] * 2
        # One count per client for both doors: a bad API token is the third failure.
        bad_api = client.get(API, headers={"Authorization": "Bearer ntf_guess"})
        assert bad_api.status_code == 401
        throttled = client.get("/metrics", headers=wrong)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
        assert client.get(API, headers={"Authorization": "Bearer ntf_guess"}).status_code == 429
        # The scraper with the right token is never locked out by a guesser on its address.
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200
    finally:
        app.extensions["notifier"].state(app).database.dispose()


@pytest.fixture
def served_multiprocess(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """``notifier serve --workers 2`` with a multiprocess metrics folder and a token."""
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    upgrade(url)
    database = Database(url)
    make_admin(database)
    database.dispose()
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": url,
        "NOTIFIER_SECRET_KEY": "x",
        "NOTIFIER_METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from notifier.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--threads",
            "2",
            "--max-streams",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/admin/login", timeout=1).close()
                break
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        yield base, url, folder
    finally:
        process.terminate()
        process.wait(timeout=15)


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
def test_gunicorn_workers_add_up(served_multiprocess: tuple[str, str, Path]) -> None:
    base, _url, folder = served_multiprocess
    # New connections until both workers answered some (each writes its own file).
    sent = 0
    while sent < 40 or (len(list(folder.glob("counter_*.db"))) < 2 and sent < 1000):
        assert _status(f"{base}{API}/unread-count", {"Authorization": "Bearer bad"}) == 401
        sent += 1
    assert len(list(folder.glob("counter_*.db"))) == 2
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        samples = scrape_text(response.read().decode())
    # the scrape (answered by one worker) adds up both
    assert value(samples, "notifier_token_failures_total") == sent
    count = "notifier_api_request_duration_seconds_count"
    assert value(samples, count, route=f"{API}/unread-count", method="GET", status="401") == sent
