"""Job health with real prefork workers: a database outage holds back the failures it caused."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from notifier.delivery import endpoint_service
from notifier.models import AdminNotification, PlatformAlert
from tests.receivers import Receiver
from tests.worker.conftest import Prefork, finished, proxied, wait_for


def _types(receiver: Receiver) -> list[tuple[str, dict[str, object]]]:
    return [(str(b["type"]), b["data"]) for b in (json.loads(r.body) for r in receiver.requests)]


def test_a_database_outage_holds_back_its_failures_and_sends_one_summary(
    prefork: Prefork, receiver: Receiver
) -> None:
    with prefork.database.session_scope() as db:
        endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    with proxied(prefork.database.url) as (proxy, url):
        env = {
            **prefork.env,
            "NOTIFIER_TEST_DATABASE": url,
            "NOTIFIER_DELIVERY_ALLOW_PRIVATE": "true",
        }
        prefork.start(env)
        task = prefork.client.tasks["t.db_import"]
        finished([task.delay(9, url, fail=True)])  # the drainer is up: it records this one
        wait_for(lambda: _types(receiver), timeout=60)
        receiver.requests.clear()
        proxy.cut()
        results = finished([task.delay(n, url) for n in (1, 2, 3)])
        assert {r.state for r in results} == {"FAILURE"}
        time.sleep(1)  # the drainer tries, and finds the database away
        proxy.restore()

        def summary() -> dict[str, object] | None:
            resolved = [d for t, d in _types(receiver) if t == "alert.resolved"]
            return resolved[0] if resolved else None

        data = wait_for(summary, timeout=60)
        time.sleep(1)  # anything else would have gone out by now
    assert data["title"] == "Database unreachable from the worker"
    held = data["held_back"]
    assert isinstance(held, dict) and held["notifications"] == 3 and held["alerts"] == 3
    sent = _types(receiver)
    # The root cause opened and resolved; none of its symptoms went out.
    assert [t for t, _ in sent] == ["alert.opened", "alert.resolved"]
    with prefork.database.session_scope() as db:
        root = db.scalars(select(PlatformAlert).where(PlatformAlert.explains.is_not(None))).one()
        symptoms = db.scalars(
            select(PlatformAlert).where(PlatformAlert.held_back_by_id.is_not(None))
        ).all()
        notes = db.scalars(select(AdminNotification).where(AdminNotification.store_id != 9)).all()
        assert root.is_resolved and root.held_back_count == 6
        assert {a.held_back_by_id for a in symptoms} == {root.id} and len(symptoms) == 3
        assert {n.held_back_by_id for n in notes} == {root.id} and len(notes) == 3


def test_the_next_success_of_a_store_resolves_its_failure_alert(
    prefork: Prefork, receiver: Receiver
) -> None:
    with prefork.database.session_scope() as db:
        endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    env = {
        **prefork.env,
        "NOTIFIER_DELIVERY_ALLOW_PRIVATE": "true",
        "NOTIFIER_TEST_RECOVERY_REFRESH": "0.5",
    }
    prefork.start(env)
    url = prefork.database.url
    task = prefork.client.tasks["t.db_import"]
    finished([task.delay(5, url, fail=True), task.delay(6, url, fail=True)])
    wait_for(lambda: len([t for t, _ in _types(receiver) if t == "alert.opened"]) == 2, 60)
    time.sleep(1)  # every pool process has read the open alerts (refreshed every 0.5 s)
    assert finished([task.delay(5, url)])[0].state == "SUCCESS"

    def resolved() -> list[dict[str, object]]:
        return [d for t, d in _types(receiver) if t == "alert.resolved"]

    [data] = wait_for(resolved, timeout=60)
    assert data["affected_stores"] == [5]
    with prefork.database.session_scope() as db:
        by_store = {a.affected_stores[0]: a for a in db.scalars(select(PlatformAlert))}
        assert by_store[5].is_resolved and not by_store[6].is_resolved
        assert by_store[5].alert_metadata["resolved_by_run"]["store_id"] == 5


def test_which_exceptions_are_symptoms_of_an_unreachable_database_or_broker() -> None:
    import sqlite3

    import psycopg
    from kombu.exceptions import OperationalError as KombuOperationalError
    from notifier.worker.health import connection_scopes
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    def raised(call: Any) -> BaseException:
        try:
            call()
        except Exception as exc:
            return exc
        raise AssertionError("did not raise")

    refused = raised(lambda: create_engine("postgresql+psycopg://u@127.0.0.1:1/x").connect())
    assert isinstance(refused, OperationalError)
    assert isinstance(refused.__cause__, psycopg.OperationalError)
    assert connection_scopes(refused, "db1", "b1") == ["database:db1"]
    away = raised(lambda: sqlite3.connect("file:/nonexistent/x.db?mode=ro", uri=True))
    assert connection_scopes(away, "db1", "b1") == ["database:db1"]
    no_table = raised(lambda: sqlite3.connect(":memory:").execute("SELECT * FROM nope"))
    assert connection_scopes(no_table, "db1", "b1") == []  # a bug, not an outage
    assert connection_scopes(KombuOperationalError("down"), "db1", "b1") == ["broker:b1"]
    assert connection_scopes(ValueError("bad row"), "db1", "b1") == []
