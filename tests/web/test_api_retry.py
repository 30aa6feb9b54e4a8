"""Retry from the API: admins only, CSRF for cookie writes, opted-in tasks only, one retry in
flight per failed run (two requests at once send one), each asked-for retry audited and the
dispatcher kicked after the commit (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from notifier.web import create_app
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from notifier import Database, FailureReport, JobKind, record_failures
from notifier.models import AdminNotification, AdminUser, FailedRun, PlatformAlert, TaskRetry
from notifier.retry import generate_key, seal
from tests.web.conftest import API, Admin

KEY = generate_key()


def _fail(database: Database, key: str, *, opted_in: bool = True, store: int = 1) -> None:
    retry = {"routing_key": "imports", "payload": seal([store], {}, KEY)} if opted_in else None
    report = FailureReport(
        key=key,
        job=JobKind.IMPORT,
        task_name="shop.import",
        task_id=key,
        store_id=store,
        store_name=f"store {store}",
        exception_class="ValueError",
        message="boom",
        fingerprint="celery:shop.import:ValueError",
        retry=retry,
    )
    with database.session_scope() as db:
        record_failures(db, [report], cooldown=timedelta(0))


def _ids(database: Database, key: str) -> tuple[int, int]:
    with database.session_scope() as db:
        note = db.scalars(select(AdminNotification.id).where(AdminNotification.dedup_key == key))
        return note.one(), db.scalars(select(PlatformAlert.id)).one()


def _retries(database: Database) -> list[TaskRetry]:
    with database.session_scope() as db:
        return list(db.scalars(select(TaskRetry)))


@pytest.fixture
def kicks(app_config: dict[str, Any]) -> list[int]:
    """Each kick the app makes after a commit that asked for retries."""
    calls: list[int] = []
    app_config["NOTIFIER_DELIVERY_KICK"] = lambda: calls.append(1)
    return calls


def test_an_admin_retries_a_notification_and_the_dispatcher_is_kicked(
    kicks: list[int], api: FlaskClient, database: Database, admin: Admin
) -> None:
    _fail(database, "celery:a:failure")
    note_id, _ = _ids(database, "celery:a:failure")
    response = api.post(f"{API}/{note_id}/retry")
    assert response.status_code == 202, response.json
    [retry] = response.json["retries"]
    assert retry["status"] == "pending" and retry["requested_by"] == admin.email
    assert retry["failed_task_id"] == "celery:a:failure"
    assert "payload" not in json.dumps(response.json)
    [stored] = _retries(database)
    assert (stored.task_id, stored.requested_by_user_id) == (retry["task_id"], admin.id)
    threading.Event().wait(0.2)  # the kick runs on its own thread, after the commit
    assert kicks == [1]
    again = api.post(f"{API}/{note_id}/retry")
    assert again.status_code == 409 and again.json["error"]["code"] == "retry_in_flight"
    assert len(_retries(database)) == 1


def test_a_task_that_did_not_opt_in_is_refused_and_nothing_changes(
    api: FlaskClient, database: Database
) -> None:
    _fail(database, "celery:a:failure", opted_in=False)
    note_id, alert_id = _ids(database, "celery:a:failure")
    for path in (f"{API}/{note_id}/retry", f"{API}/alerts/{alert_id}/retry"):
        response = api.post(path)
        assert response.status_code == 409, response.json
        assert response.json["error"]["code"] == "not_retryable"
        assert "did not opt in" in response.json["error"]["message"]
    assert _retries(database) == []


def test_a_cookie_write_without_csrf_is_refused_and_nothing_changes(
    browser: tuple[FlaskClient, str], database: Database
) -> None:
    client, csrf = browser
    _fail(database, "celery:a:failure")
    note_id, alert_id = _ids(database, "celery:a:failure")
    for path in (f"{API}/{note_id}/retry", f"{API}/alerts/{alert_id}/retry"):
        refused = client.post(path)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
        wrong = client.post(path, headers={"X-CSRF-Token": csrf + "x"})
        assert wrong.status_code == 403
    assert _retries(database) == []
    assert client.post(f"{API}/{note_id}/retry", headers={"X-CSRF-Token": csrf}).status_code == 202


def test_no_credentials_or_a_deactivated_admin_is_refused_and_nothing_changes(
    client: FlaskClient, api: FlaskClient, database: Database
) -> None:
    _fail(database, "celery:a:failure")
    note_id, alert_id = _ids(database, "celery:a:failure")
    assert client.post(f"{API}/{note_id}/retry").status_code == 401
    with database.session_scope() as db:
        db.execute(update(AdminUser).values(is_active=False))
    assert api.post(f"{API}/alerts/{alert_id}/retry").status_code == 401
    assert _retries(database) == []


def test_retry_all_retries_each_failed_run_once_and_says_how_many(
    api: FlaskClient, database: Database
) -> None:
    for n in range(3):
        _fail(database, f"celery:r{n}:failure", store=n)
    with database.session_scope() as db:
        alert_id = db.scalars(select(PlatformAlert.id)).one()
    response = api.post(f"{API}/alerts/{alert_id}/retry")
    assert response.status_code == 202
    assert (len(response.json["retries"]), response.json["remaining"]) == (3, 0)
    assert response.json["limit"] == 100
    state = api.get(f"{API}/alerts/{alert_id}/retries").json
    assert (state["retryable"], state["busy"], len(state["retries"])) == (0, 3, 3)
    assert api.post(f"{API}/alerts/{alert_id}/retry").status_code == 409
    assert len(_retries(database)) == 3


@pytest.fixture
def served(app_config: dict[str, Any]) -> Iterator[str]:
    """The app on a real threaded socket, so requests truly run at once."""
    app: Flask = create_app(app_config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    app.extensions["notifier"].state(app).database.dispose()


def test_two_retries_at_once_send_one(served: str, token: str, database: Database) -> None:
    _fail(database, "celery:a:failure")
    note_id, alert_id = _ids(database, "celery:a:failure")
    start = threading.Barrier(4)
    statuses: list[int] = []

    def post(path: str) -> None:
        request = urllib.request.Request(
            served + path, method="POST", headers={"Authorization": f"Bearer {token}"}
        )
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    paths = [f"{API}/{note_id}/retry", f"{API}/alerts/{alert_id}/retry"] * 2
    threads = [threading.Thread(target=post, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [202, 409, 409, 409]
    with database.session_scope() as db:
        assert db.scalar(select(func.count()).select_from(TaskRetry)) == 1
        assert db.scalars(select(FailedRun.retry_status)).one() == "pending"
