"""Job health with real prefork workers: a database or broker outage holds back the failures
it caused, and two workers probing one queue nobody consumes count it once."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from notifier.delivery import endpoint_service
from notifier.models import AdminNotification, PlatformAlert, QueueState
from tests.receivers import Receiver
from tests.worker.conftest import (
    Prefork,
    alerts,
    finished,
    notifications,
    proxied,
    wait_for,
)


def _first_resolved(receiver: Receiver) -> dict[str, object] | None:
    """The data of the first ``alert.resolved`` the receiver got (a root cause's summary)."""
    resolved = [d for t, d in _types(receiver) if t == "alert.resolved"]
    return resolved[0] if resolved else None


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

        data = wait_for(lambda: _first_resolved(receiver), timeout=60)
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


def test_a_broker_outage_holds_back_its_failures_and_two_workers_count_once(
    prefork: Prefork, receiver: Receiver, tmp_path: Path
) -> None:
    from notifier.worker.health.inhibition import url_tag

    with prefork.database.session_scope() as db:
        endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    orphan = f"health-orphan-{uuid.uuid4().hex[:8]}"
    prefork.client.tasks["t.noop"].apply_async(queue=orphan)  # a queue nobody consumes
    # Redis's default user has no password: any password logs in, and none may be shown.
    direct = prefork.env["NOTIFIER_TEST_BROKER"].replace("redis://", "redis://default:secret@")
    with proxied(direct) as (proxy, url):
        conf = {"notifier_health_interval": 0.3, "notifier_health_queues": [orphan]}
        env = {
            **prefork.env,
            "NOTIFIER_TEST_BROKER": url,
            "NOTIFIER_TEST_CONF": json.dumps(conf),
            "NOTIFIER_DELIVERY_ALLOW_PRIVATE": "true",
        }
        workers = [prefork.start(env, 1, wait=False) for _ in range(2)]
        for worker in workers:
            worker.ready()
        checks: set[object] = set()

        def checked_often() -> bool:  # both workers probe it every 0.3 s
            with prefork.database.session_scope() as db:
                checks.add(
                    db.scalar(select(QueueState.checked_at).where(QueueState.name == orphan))
                )
            return len(checks - {None}) >= 8

        wait_for(checked_often, timeout=30, interval=0.05)
        [stuck] = [a for a in alerts(prefork.database) if a.fingerprint.endswith(orphan)]
        assert stuck.occurrence_count == 1  # not once per worker, nor per check
        go = tmp_path / "go"
        result = prefork.client.tasks["t.publish"].delay(4, str(go))
        wait_for(lambda: Path(f"{go}.started").exists(), timeout=30)
        proxy.cut()

        def root() -> PlatformAlert | None:  # both workers report it, on one alert
            found = [a for a in alerts(prefork.database) if a.explains == f"broker:{url_tag(url)}"]
            return found[0] if found and found[0].occurrence_count == 2 else None

        cause = wait_for(root, timeout=30)
        go.touch()  # the task publishes now, through the cut broker
        assert finished([result])[0].state == "FAILURE"
        wait_for(lambda: [n for n in notifications(prefork.database) if n.store_id == 4], 30)
        proxy.restore()

        data = wait_for(lambda: _first_resolved(receiver), timeout=30)
        time.sleep(1)  # anything else would have gone out by now
        for worker in workers:  # while they can still reach the broker: a quick shutdown
            worker.terminate()
        for worker in workers:
            worker.stop()
    assert cause.title == data["title"] == "Broker unreachable from the worker"
    assert (cause.alert_type.value, cause.severity.value) == ("integration", "critical")
    shown = f"redis://default:**@127.0.0.1:{proxy.port}/{url.rpartition('/')[2]}"
    assert cause.alert_metadata["broker"] == shown and shown in (cause.description or "")
    assert "secret" not in json.dumps(cause.alert_metadata) + (cause.description or "")
    assert len(cause.alert_metadata["unreachable_from"]) == 2
    held = data["held_back"]
    assert isinstance(held, dict) and (held["alerts"], held["notifications"]) == (1, 1)
    # The root cause opened and resolved once; the failure it explains never went out.
    sent = [(t, d["title"]) for t, d in _types(receiver) if d["title"] != stuck.title]
    assert sent == [("alert.opened", cause.title), ("alert.resolved", cause.title)]
    with prefork.database.session_scope() as db:
        found = db.get(PlatformAlert, cause.id)
        assert found is not None and found.is_resolved and found.held_back_count == 2
        [symptom] = db.scalars(
            select(PlatformAlert).where(PlatformAlert.held_back_by_id == cause.id)
        ).all()
        assert "OperationalError" in symptom.title
        [note] = db.scalars(select(AdminNotification).where(AdminNotification.store_id == 4))
        assert note.held_back_by_id == cause.id


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
