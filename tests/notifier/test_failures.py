"""The failure recorder, without Celery: reports in, alert counts and notifications out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select

from notifier import (
    STORM_STORES,
    Database,
    FailureKind,
    FailureReport,
    JobKind,
    prune_processed,
    record_failures,
    schema_problem,
    upgrade,
)
from notifier.models import AdminNotification, PlatformAlert, ProcessedFailure
from notifier.types import utcnow

COOLDOWN = timedelta(minutes=15)


def _sync(key: str, fingerprint: str, store: int, message: str, **extra: Any) -> FailureReport:
    job = {"job": JobKind.SYNC, "task_name": "shop.sync", "exception_class": "ConnectionError"}
    return FailureReport(
        key=key,
        task_id=key,
        store_id=store,
        store_name=f"store {store}",
        message=message,
        fingerprint=fingerprint,
        **{**job, **extra},
    )


def _record(database: Database, reports: list[FailureReport], cooldown: timedelta) -> list[bool]:
    with database.session_scope() as db:
        return record_failures(db, reports, cooldown=cooldown)


def _state(database: Database) -> tuple[dict[str, PlatformAlert], list[AdminNotification]]:
    with database.session_scope() as db:
        alerts = {a.fingerprint: a for a in db.scalars(select(PlatformAlert))}
        notes = list(db.scalars(select(AdminNotification).order_by(AdminNotification.id)))
    return alerts, notes


def test_batch_counts_like_one_upsert_per_report(database: Database) -> None:
    reports = [
        _sync("k1", "sync:A", 1, "first", kind=FailureKind.TIME_LIMIT),
        _sync("k2", "sync:B", 9, "other"),
        _sync("k3", "sync:A", 2, "second", kind=FailureKind.WORKER_LOST),
        _sync("k3", "sync:A", 2, "second", kind=FailureKind.WORKER_LOST),  # twice: once
        _sync("k4", "sync:A", 1, "last"),
    ]
    assert _record(database, reports, COOLDOWN) == [True] * 5
    alerts, notes = _state(database)
    a = alerts["sync:A"]
    assert (a.occurrence_count, a.severity.value) == (3, "critical")
    assert a.alert_type == "performance"  # the first report opened it
    assert a.affected_stores == [1, 2] and a.description == "last"
    assert alerts["sync:B"].occurrence_count == 1
    # one notification per fingerprint within the cooldown, the first report's
    assert [(n.dedup_key, n.alert_fingerprint) for n in notes] == [
        ("k1", "sync:A"),
        ("k2", "sync:B"),
    ]
    assert notes[0].type == "order_sync_failure" and notes[0].store_id == 1
    # a later batch counts and, within the cooldown, does not notify again
    _record(database, [_sync("k5", "sync:A", 3, "again")], COOLDOWN)
    alerts, notes = _state(database)
    assert alerts["sync:A"].occurrence_count == 4 and len(notes) == 2


def test_without_cooldown_every_report_notifies(database: Database) -> None:
    _record(database, [_sync(f"k{i}", "sync:A", 1, f"m{i}") for i in range(4)], timedelta(0))
    alerts, notes = _state(database)
    assert len(notes) == 4 and alerts["sync:A"].occurrence_count == 4


def test_replays_are_exact_whatever_the_cooldown_held_back(database: Database) -> None:
    """A report only counted (its notification held back) is not counted again on replay."""
    reports = [_sync(f"k{i}", "sync:A", 1, "storm") for i in range(40)]
    _record(database, reports, COOLDOWN)
    for _ in range(3):  # a crash between commit and spool delete, three times over
        assert _record(database, reports, COOLDOWN) == [True] * 40
    alerts, notes = _state(database)
    assert alerts["sync:A"].occurrence_count == 40
    assert len(notes) == 1


def test_each_kind_makes_its_notification(database: Database) -> None:
    base = {"task_name": "t", "task_id": "id", "exception_class": "mod.Boom", "message": "m"}
    reports = [
        FailureReport(key="a", job=JobKind.IMPORT, store_id=3, store_name="Acme", **base),
        FailureReport(
            key="b",
            job=JobKind.IMPORT,
            kind=FailureKind.ROW_ERRORS,
            error_count=7,
            errors=["line 1: bad"],
            store_name="Acme",
            **base,
        ),
        FailureReport(
            key="c",
            job=JobKind.SYNC,
            kind=FailureKind.ORDER_EXCEPTION,
            order_number="LS-1",
            unmatched_products=["SKU-9"],
            **base,
        ),
        FailureReport(
            key="d",
            job=JobKind.GENERIC,
            notification_type="system_info",
            priority="low",
            title="Nightly failed",
            fingerprint="f:d",
            **base,
        ),
        FailureReport(key="e", job=JobKind.GENERIC, fingerprint="f:e", **base),
    ]
    _record(database, reports, COOLDOWN)
    _, notes = _state(database)
    by_key = {n.dedup_key: n for n in notes}
    assert by_key["a"].type == "import_failure" and by_key["a"].title == "Import failed for Acme"
    assert by_key["b"].notification_metadata["error_count"] == 7
    assert by_key["c"].type == "order_exception" and "SKU-9" in by_key["c"].message
    assert (by_key["d"].type, by_key["d"].priority, by_key["d"].title) == (
        "system_info",
        "low",
        "Nightly failed",
    )
    assert by_key["e"].type == "critical_error"
    assert by_key["e"].notification_metadata["details"]["task_id"] == "id"
    assert all(n.action_url is None for n in notes)


def test_a_report_round_trips_through_json() -> None:
    report = _sync("k", "f", 1, "m", arguments={"a": [1, "x"]}, extra={"n": 1})
    assert FailureReport.from_json(report.to_json()) == report
    with pytest.raises(ValueError):
        FailureReport.from_json('{"key": "k"}')


def test_hostile_reports_are_stored_not_dropped(database: Database) -> None:
    """NUL bytes and ids too large for the integer column: a notification all the same."""
    reports = [
        FailureReport(
            key="nul",
            job=JobKind.IMPORT,
            task_name="t\x00x",
            task_id="1",
            store_id=1,
            exception_class="ValueError",
            message="ValueError: bad\x00byte",
            traceback="line\x00",
            arguments={"k\x00": ["v\x00"]},
            errors=["row\x00"],
            fingerprint="celery:t:ValueError\x00",
        ),
        _sync("big", "celery:shop.sync:E:store=1099511627776", 2**40, "down"),
    ]
    assert _record(database, reports, COOLDOWN) == [True, True]
    alerts, notes = _state(database)
    by_key = {n.dedup_key: n for n in notes}
    assert "bad\\x00byte" in by_key["nul"].message
    assert by_key["nul"].notification_metadata["arguments"] == {"k\\x00": ["v\\x00"]}
    big = by_key["big"]
    assert big.store_id is None and big.notification_metadata["store_ref"] == 2**40
    assert alerts["celery:shop.sync:E:store=1099511627776"].affected_stores == []


def test_a_report_that_cannot_be_stored_does_not_block_the_others(database: Database) -> None:
    bad = _sync("bad", "f", 1, "m", notification_type="system_info")
    # A generic report with an unknown notification type is refused by the core's checks.
    object.__setattr__(bad, "job", JobKind.GENERIC)
    object.__setattr__(bad, "notification_type", "nonsense")
    outcomes = _record(database, [_sync("ok", "g", 1, "m"), bad], COOLDOWN)
    assert outcomes == [True, False]
    _, notes = _state(database)
    assert [n.dedup_key for n in notes] == ["ok"]


def test_processed_keys_are_pruned_in_bounded_batches(database: Database) -> None:
    old = utcnow() - timedelta(days=31)
    with database.session_scope() as db:
        db.add_all(ProcessedFailure(key=f"old{i}", processed_at=old) for i in range(1500))
        db.add(ProcessedFailure(key="new", processed_at=utcnow()))
    with database.session_scope() as db:
        assert prune_processed(db) == 1000
    with database.session_scope() as db:
        assert prune_processed(db) == 500
        assert prune_processed(db) == 0
        assert db.scalar(select(func.count()).select_from(ProcessedFailure)) == 1


def test_migration_backfills_fingerprints_and_processed_keys(empty_url: str) -> None:
    """Rows written before 0003 kept the fingerprint in metadata, in two layouts."""
    upgrade(empty_url, "0002")
    rows = [
        ("celery:1:failure", {"alert_fingerprint": "fp:top", "task_id": "1"}),
        ("celery:2:failure", {"error_type": "x", "details": {"alert_fingerprint": "fp:nested"}}),
        (None, {"details": "a string, not an object"}),
        ("api-key", {"other": 1}),
    ]
    database = Database(empty_url)
    # The table under its name of the time (0013 prefixed it).
    old = AdminNotification.__table__.to_metadata(  # type: ignore[attr-defined]
        MetaData(), name="admin_notifications"
    )
    with database.engine.begin() as conn:
        for key, meta in rows:
            conn.execute(
                old.insert().values(
                    type="critical_error",
                    priority="high",
                    title="t",
                    message="m",
                    is_read=False,
                    action_required=False,
                    notification_metadata=meta,
                    dedup_key=key,
                    created_at=utcnow(),
                )
            )
    database.dispose()
    upgrade(empty_url)
    database = Database(empty_url)
    with database.session_scope() as db:
        found = db.execute(
            select(AdminNotification.dedup_key, AdminNotification.alert_fingerprint).order_by(
                AdminNotification.id
            )
        ).all()
        processed = set(db.scalars(select(ProcessedFailure.key)))
    database.dispose()
    assert [tuple(row) for row in found] == [
        ("celery:1:failure", "fp:top"),
        ("celery:2:failure", "fp:nested"),
        (None, None),
        ("api-key", None),
    ]
    assert processed == {"celery:1:failure", "celery:2:failure"}


def test_schema_problem_says_what_is_missing_or_old(empty_url: str) -> None:
    assert schema_problem(empty_url) == "the notifier schema is missing"
    upgrade(empty_url, "0002")
    problem = schema_problem(empty_url)
    assert problem is not None and problem.startswith("the notifier schema is at revision 0002,")
    upgrade(empty_url)
    assert schema_problem(empty_url) is None


def _import(key: str, store: int) -> FailureReport:
    """A failure of one store's import, as the worker reports it."""
    return _sync(
        key,
        f"celery:shop.import:ValueError:store={store}",
        store,
        "ValueError: bad header",
        job=JobKind.IMPORT,
        task_name="shop.import",
        exception_class="ValueError",
        storm_fingerprint="celery:shop.import:ValueError",
    )


def test_import_failures_of_two_stores_notify_for_each(database: Database) -> None:
    _record(database, [_import("k1", 42)], COOLDOWN)
    _record(database, [_import("k2", 43)], COOLDOWN)
    alerts, notes = _state(database)
    assert [(n.store_id, n.title) for n in notes] == [
        (42, "Import failed for store 42"),
        (43, "Import failed for store 43"),
    ]
    assert {fp: a.occurrence_count for fp, a in alerts.items()} == {
        "celery:shop.import:ValueError:store=42": 1,
        "celery:shop.import:ValueError:store=43": 1,
    }


@pytest.mark.parametrize("batched", [False, True])
def test_a_storm_across_stores_folds_into_one_notification(
    database: Database, batched: bool
) -> None:
    """The same failure for 5+ stores within the cooldown: one notification naming the count."""
    stores = [11, 12, 13, 14, 15, 16, 17, 18]
    reports = [_import(f"k{store}", store) for store in stores]
    reports.append(_import("k11-again", 11))  # a store of the storm failing again
    if batched:
        _record(database, reports, COOLDOWN)
    else:
        for report in reports:
            _record(database, [report], COOLDOWN)
    alerts, notes = _state(database)
    per_store = [n for n in notes if n.store_id is not None]
    assert [n.store_id for n in per_store] == [11, 12, 13, 14]
    [storm] = [n for n in notes if n.store_id is None]
    # it names the stores its alert lists when it is made: a batch counts its later stores
    named = stores if batched else stores[:5]
    assert storm.title == f"Import failed for {len(named)} stores"
    assert storm.alert_fingerprint == "celery:shop.import:ValueError"
    assert storm.notification_metadata["store_count"] == len(named)
    assert storm.notification_metadata["store_ids"] == named
    assert f"{len(named)} stores" in storm.message and "bad header" in storm.message
    # later stores, and earlier ones failing again, only count on the storm's alert
    storm_alert = alerts["celery:shop.import:ValueError"]
    assert storm_alert.occurrence_count == 5
    assert storm_alert.affected_stores == stores
    assert sum(a.occurrence_count for a in alerts.values()) == len(reports)
    assert sorted(fp for fp in alerts if ":store=" in fp) == [
        f"celery:shop.import:ValueError:store={store}" for store in (11, 12, 13, 14)
    ]
    # replayed, nothing changes
    _record(database, reports, COOLDOWN)
    assert _state(database)[0]["celery:shop.import:ValueError"].occurrence_count == 5
    assert len(_state(database)[1]) == 5


def test_stores_failing_apart_are_no_storm(database: Database) -> None:
    """Stores that failed longer than the cooldown ago do not count towards a storm."""
    for store in range(1, 5):
        _record(database, [_import(f"old{store}", store)], COOLDOWN)
    with database.session_scope() as db:
        db.execute(
            PlatformAlert.__table__.update().values(  # type: ignore[attr-defined]
                last_occurred_at=utcnow() - COOLDOWN - timedelta(minutes=1)
            )
        )
    _record(database, [_import("new5", 5), _import("new6", 6)], COOLDOWN)
    _, notes = _state(database)
    assert [n.store_id for n in notes] == [1, 2, 3, 4, 5, 6]


def test_without_cooldown_a_storm_across_stores_notifies_per_store(database: Database) -> None:
    _record(database, [_import(f"k{store}", store) for store in range(8)], timedelta(0))
    alerts, notes = _state(database)
    assert len(notes) == 8 and len(alerts) == 8


def test_a_sync_storm_of_many_stores_is_one_notification_within_the_size_limit(
    database: Database,
) -> None:
    stores = [2_000_000_000 + n for n in range(300)]
    reports = [
        _sync(
            f"s{store}",
            f"celery:shop.sync:ConnectionError:store={store}",
            store,
            "ConnectionError: marketplace down",
            storm_fingerprint="celery:shop.sync:ConnectionError",
            traceback="Traceback\n" + "  frame\n" * 2000,
        )
        for store in stores
    ]
    assert _record(database, reports, COOLDOWN) == [True] * 300
    alerts, notes = _state(database)
    assert len(notes) == STORM_STORES
    storm = notes[-1]
    assert storm.type == "order_sync_failure" and storm.store_id is None
    assert storm.title == "Order sync failed for 300 stores"
    assert storm.notification_metadata["store_count"] == 300
    assert storm.notification_metadata["store_ids"] == stores[:100]
    assert alerts["celery:shop.sync:ConnectionError"].occurrence_count == 300 - (STORM_STORES - 1)
