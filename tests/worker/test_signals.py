"""Which failures notify: a real in-process worker on Redis, and the rows it leaves behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from notifier import Database

from .conftest import alerts, notifications, settle


def run(app: Celery, name: str, *args: Any, **kwargs: Any) -> Any:
    """Send one task and wait for it to finish; returns its AsyncResult."""
    result = app.tasks[name].apply_async(args=args, kwargs=kwargs)
    result.get(timeout=30, propagate=False)
    return result


def test_body_exception_notifies_once(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    result = run(celery_app, "t.boom", 7, store_name="Acme Corp")
    settle(worker_database, spool_dir)
    assert result.state == "FAILURE"
    [note] = notifications(worker_database)
    assert note.type == "import_failure"
    assert note.store_id == 7
    assert note.title == "Import failed for Acme Corp"
    assert "ValueError: boom for store 7" in note.message
    meta = note.notification_metadata
    assert meta["task_id"] == result.id
    assert meta["attempts"] == 1
    assert meta["exception_class"] == "ValueError"
    assert "boom for store 7" in meta["traceback"]
    assert note.dedup_key == f"celery:{result.id}:failure"
    [alert] = alerts(worker_database)
    assert alert.fingerprint == "celery:t.boom:ValueError:store=7"
    assert alert.occurrence_count == 1
    assert alert.alert_type == "system"


def test_retries_notify_once_after_the_last_attempt(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    failed = run(celery_app, "t.retry_self", 3)
    auto = run(celery_app, "t.autoretry", 4)
    settle(worker_database, spool_dir)
    assert failed.state == "FAILURE" and auto.state == "FAILURE"
    by_task = {n.notification_metadata["task_id"]: n for n in notifications(worker_database)}
    assert set(by_task) == {failed.id, auto.id}
    assert by_task[failed.id].notification_metadata["attempts"] == 3
    assert by_task[auto.id].notification_metadata["attempts"] == 3
    assert by_task[auto.id].type == "order_sync_failure"


def test_a_retry_that_succeeds_does_not_notify(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    result = run(celery_app, "t.retry_self", 3, succeed_on=1)
    settle(worker_database, spool_dir)
    assert result.state == "SUCCESS"
    assert notifications(worker_database) == []
    assert alerts(worker_database) == []


@pytest.mark.parametrize("celery_config", [{"notifier_error_threshold": 5}])
def test_row_errors_at_the_threshold_notify(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    below = run(celery_app, "t.rows", 1, 4)
    at = run(celery_app, "t.rows", 1, 5)
    counted = run(celery_app, "t.rows", 1, 12, as_count=True)
    strict = run(celery_app, "t.rows_strict", 1, 2)
    settle(worker_database, spool_dir)
    assert {r.state for r in (below, at, counted, strict)} == {"SUCCESS"}
    by_task = {n.notification_metadata["task_id"]: n for n in notifications(worker_database)}
    assert set(by_task) == {at.id, counted.id, strict.id}
    assert by_task[at.id].title == "Import for store 1 finished with 5 errors"
    assert by_task[counted.id].notification_metadata["error_count"] == 12
    assert alerts(worker_database) == []


@pytest.mark.parametrize("celery_config", [{"notifier_error_threshold": 20}])
def test_app_wide_threshold(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    run(celery_app, "t.rows", 1, 19)
    at = run(celery_app, "t.rows", 1, 20)
    settle(worker_database, spool_dir)
    assert [n.notification_metadata["task_id"] for n in notifications(worker_database)] == [at.id]


def test_control_flow_and_expected_exceptions_never_notify(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    ignored = celery_app.tasks["t.control"].delay(1, "ignore")  # stores no result at all
    rejected = celery_app.tasks["t.control"].delay(1, "reject")
    thrown = run(celery_app, "t.control", 1, "throws")
    last = run(celery_app, "t.plain", 1)  # not decorated, and all_tasks is off
    settle(worker_database, spool_dir)
    assert thrown.state == "FAILURE" and last.state == "FAILURE"
    assert ignored.state == "PENDING"  # Celery's own outcome for Ignore
    assert rejected.state in {"FAILURE", "REJECTED", "PENDING"}
    assert notifications(worker_database) == []
    assert alerts(worker_database) == []


@pytest.mark.parametrize("celery_config", [{"notifier_test_all_tasks": True}])
def test_all_tasks_turns_any_final_failure_into_a_critical_error(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    result = run(celery_app, "t.plain", 3)
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)
    assert note.type == "critical_error" and note.priority == "critical"
    assert note.notification_metadata["details"]["task_id"] == result.id


def test_generic_decorator(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    run(celery_app, "t.generic")
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)
    assert note.type == "critical_error" and note.priority == "critical"
    assert note.title == "Nightly t.generic"


@pytest.mark.parametrize(
    ("task", "failure", "alert_type", "title"),
    [
        ("t.autoretry", "ConnectionError", "integration", "Order sync failed for store {}"),
        ("t.boom", "ValueError", "system", "Import failed for store {}"),
    ],
)
def test_two_stores_failing_alike_each_get_an_alert_and_a_notification(
    celery_app: Celery,
    celery_worker: Any,
    worker_database: Database,
    spool_dir: Path,
    task: str,
    failure: str,
    alert_type: str,
    title: str,
) -> None:
    """Within the cooldown (900 s by default), store 43 is not store 42's repeat."""
    run(celery_app, task, 42)
    run(celery_app, task, 43)
    settle(worker_database, spool_dir)
    assert [(a.fingerprint, a.alert_type) for a in alerts(worker_database)] == [
        (f"celery:{task}:{failure}:store=42", alert_type),
        (f"celery:{task}:{failure}:store=43", alert_type),
    ]
    notes = notifications(worker_database)
    assert [(n.store_id, n.title) for n in notes] == [(s, title.format(s)) for s in (42, 43)]


def test_order_exceptions_from_a_returned_sync(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    run(celery_app, "t.sync_orders", 9)
    settle(worker_database, spool_dir)
    notes = notifications(worker_database)
    assert sorted(n.notification_metadata["order_number"] for n in notes) == ["A-1", "A-2"]
    assert {n.type for n in notes} == {"order_exception"}
    assert notes[0].title.endswith("from Shop 9 has unmatched products")


def test_a_sync_with_row_errors_at_the_threshold_notifies_once(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    """Sync jobs share the import jobs' threshold (5 by default); order exceptions still notify."""
    at = run(celery_app, "t.sync_rows", 3, 7)
    below = run(celery_app, "t.sync_rows", 3, 4)
    orders = run(celery_app, "t.sync_rows", 4, 4, orders=2)
    settle(worker_database, spool_dir)
    assert {r.state for r in (at, below, orders)} == {"SUCCESS"}
    notes = notifications(worker_database)
    by_task: dict[str, list[Any]] = {}
    for note in notes:
        by_task.setdefault(note.notification_metadata["task_id"], []).append(note)
    assert set(by_task) == {at.id, orders.id}
    [rows] = by_task[at.id]
    assert rows.type == "order_sync_failure" and rows.store_id == 3
    assert rows.title == "Order sync for store 3 finished with 7 errors"
    assert rows.notification_metadata["error_count"] == 7
    assert "line 0: unknown status" in rows.message
    assert sorted(n.notification_metadata["order_number"] for n in by_task[orders.id]) == [
        "S-0",
        "S-1",
    ]
    assert alerts(worker_database) == []


def test_the_same_failure_reported_twice_notifies_once(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    first = celery_app.tasks["t.boom"].apply_async(args=(2,), task_id="fixed-id-1")
    first.get(timeout=30, propagate=False)
    again = celery_app.tasks["t.boom"].apply_async(args=(2,), task_id="fixed-id-1")  # redelivery
    again.get(timeout=30, propagate=False)
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)
    assert note.dedup_key == "celery:fixed-id-1:failure"
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 1


@pytest.mark.parametrize("celery_config", [{"notifier_notification_cooldown": 900}])
def test_a_storm_within_the_cooldown_gives_one_notification(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    results = [celery_app.tasks["t.boom"].delay(1) for _ in range(30)]
    for result in results:
        result.get(timeout=30, propagate=False)
    settle(worker_database, spool_dir)
    assert len(notifications(worker_database)) == 1
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 30


def test_secrets_are_redacted_and_arguments_capped(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    options = {"Password": "hunter2", "nested": [{"AUTHORIZATION": "Bearer x"}], "page": 2}
    options["deep"] = {"client_secret": "s", "Token": "t", "keep": "visible"}
    run(celery_app, "t.secret", 1, "k-123", options, blob="x" * 50_000)
    settle(worker_database, spool_dir)
    [note] = notifications(worker_database)
    stored = str(note.notification_metadata)
    for secret in ("hunter2", "Bearer x", "k-123", "'s'", "'t'"):
        assert secret not in stored
    assert "[redacted]" in stored
    assert len(stored) < 16 * 1024


def test_an_unstorable_result_is_still_recorded(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    result = run(celery_app, "t.unstorable", 1)
    settle(worker_database, spool_dir)
    assert result.state == "FAILURE"
    [note] = notifications(worker_database)
    assert note.type == "import_failure"


@pytest.mark.parametrize("celery_config", [{"notifier_notification_cooldown": 900}])
def test_the_same_failure_for_many_stores_is_one_storm_notification(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    for store in range(1, 7):
        run(celery_app, "t.boom", store)
        settle(worker_database, spool_dir)  # one at a time: the count named is then exact
    notes = notifications(worker_database)
    assert [n.store_id for n in notes] == [1, 2, 3, 4, None]
    assert notes[-1].title == "Import failed for 5 stores"
    assert notes[-1].notification_metadata["store_count"] == 5
    storm = {a.fingerprint: a for a in alerts(worker_database)}["celery:t.boom:ValueError"]
    assert storm.occurrence_count == 2 and storm.affected_stores == [1, 2, 3, 4, 5, 6]
