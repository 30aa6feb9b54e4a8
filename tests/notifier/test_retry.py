"""Retries in the core: sealed arguments, failed runs kept by the recorder, retries asked for
once, claimed once, finished, bounded, and pruned by retention (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import (
    STORM_STORES,
    ConfigurationError,
    Database,
    FailureReport,
    JobKind,
    prune,
    record_failures,
)
from notifier.accounts.users import create_admin
from notifier.models import AdminNotification, AdminUser, FailedRun, PlatformAlert, TaskRetry
from notifier.retry import (
    PENDING,
    SENT,
    SUCCEEDED,
    NotRetryableError,
    RetryInFlightError,
    alert_summary,
    claim_pending,
    finish_retry,
    generate_key,
    retry_alert,
    retry_notification,
    rotate,
    seal,
    unseal,
)

COOLDOWN = timedelta(0)  # every report notifies: one notification per run
SECRET = "s3cret-order-file.csv"
FINGERPRINT = "celery:shop.import:ValueError"


def _report(
    key: str, *, store: int = 1, sealed: bool = True, keys: str = "", storm: bool = False
) -> FailureReport:
    retry = {"exchange": "", "routing_key": "imports"}
    if sealed:
        retry["payload"] = seal([store], {"csv_path": SECRET}, keys)
    else:
        retry["problem"] = "NOTIFIER_RETRY_KEY is not set"
    return FailureReport(
        key=key,
        job=JobKind.IMPORT,
        task_name="shop.import",
        task_id=key,
        store_id=store,
        store_name=f"store {store}",
        exception_class="ValueError",
        message="boom",
        fingerprint=f"celery:shop.import:ValueError:store={store}" if storm else FINGERPRINT,
        storm_fingerprint=FINGERPRINT if storm else None,
        retry=retry,
    )


@pytest.fixture
def key() -> str:
    return generate_key()


def _admin(database: Database) -> AdminUser:
    with database.session_scope() as db:
        admin = create_admin(
            db, email="ops@example.com", password="correct horse", display_name="Ops"
        )
        db.flush()
        db.expunge(admin)
    return admin


def _record(database: Database, *reports: FailureReport) -> None:
    with database.session_scope() as db:
        record_failures(db, list(reports), cooldown=COOLDOWN)


def _notification(db: Session, key: str) -> AdminNotification:
    return db.scalars(select(AdminNotification).where(AdminNotification.dedup_key == key)).one()


def test_sealed_arguments_open_with_every_key_and_rotate_to_the_first(key: str) -> None:
    old = generate_key()
    token = seal([5], {"csv_path": SECRET}, old)
    assert SECRET not in token
    assert unseal(token, f"{key},{old}") == ([5], {"csv_path": SECRET})
    rotated = rotate(token, f"{key},{old}")
    assert unseal(rotated, key) == ([5], {"csv_path": SECRET})
    with pytest.raises(ConfigurationError, match="no key in NOTIFIER_RETRY_KEY opens"):
        unseal(token, key)


def test_no_key_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="NOTIFIER_RETRY_KEY is not set"):
        seal([1], {}, "")
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        seal([1], {}, "not-a-key")


def test_arguments_that_cannot_be_kept_say_why(key: str) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        seal([object()], {}, key)
    with pytest.raises(ValueError, match="bytes sealed, over the"):
        seal(["x" * 100_000], {}, key)


def test_recorder_keeps_the_run_sealed_and_linked_to_its_alert(
    database: Database, key: str
) -> None:
    _record(database, _report("celery:a:failure", keys=key))
    with database.session_scope() as db:
        run = db.scalars(select(FailedRun)).one()
        alert = db.scalars(select(PlatformAlert)).one()
        note = _notification(db, "celery:a:failure")
        assert run.alert_id == alert.id
        assert run.routing_key == "imports"
        assert SECRET not in (run.payload or "")
        assert unseal(run.payload or "", key) == ([1], {"csv_path": SECRET})
        # Never shown: neither the notification nor the alert carries the sealed arguments.
        assert "payload" not in str(note.notification_metadata)
        assert run.payload not in str(alert.alert_metadata)


def test_a_retry_is_asked_once_claimed_once_and_finished(database: Database, key: str) -> None:
    admin = _admin(database)
    _record(database, _report("celery:a:failure", keys=key))
    with database.session_scope() as db:
        batch = retry_notification(db, _notification(db, "celery:a:failure"), admin)
        new_id = batch.retries[0].task_id
    with database.session_scope() as db, pytest.raises(RetryInFlightError):
        retry_notification(db, _notification(db, "celery:a:failure"), admin)
    with database.session_scope() as db:
        retry = db.scalars(select(TaskRetry)).one()
        assert (retry.status, retry.requested_by, retry.failed_task_id) == (
            PENDING,
            "ops@example.com",
            "celery:a:failure",
        )
    with database.session_scope() as db:
        claimed = claim_pending(db)
    with database.session_scope() as db:
        assert claim_pending(db) == []  # a second dispatcher finds nothing to send
    assert [c.task_id for c in claimed] == [new_id]
    assert claimed[0].routing_key == "imports"
    with database.session_scope() as db:
        assert db.scalars(select(TaskRetry)).one().status == SENT
        alert_id = finish_retry(db, new_id, SUCCEEDED)
        assert alert_id == db.scalars(select(PlatformAlert.id)).one()
    with database.session_scope() as db:
        assert db.scalars(select(TaskRetry)).one().status == SUCCEEDED
        # A run that a retry fixed is not retried again.
        with pytest.raises(RetryInFlightError, match="already succeeded"):
            retry_notification(db, _notification(db, "celery:a:failure"), admin)


def test_a_run_kept_without_arguments_is_refused_and_changes_nothing(
    database: Database, key: str
) -> None:
    admin = _admin(database)
    _record(database, _report("celery:a:failure", sealed=False))
    with database.session_scope() as db, pytest.raises(NotRetryableError, match="RETRY_KEY"):
        retry_notification(db, _notification(db, "celery:a:failure"), admin)
    with database.session_scope() as db:
        assert db.scalars(select(TaskRetry)).all() == []


def test_retry_all_retries_each_run_once_within_the_bound(database: Database, key: str) -> None:
    admin = _admin(database)
    _record(database, *[_report(f"celery:r{n}:failure", keys=key) for n in range(5)])
    with database.session_scope() as db:
        alert = db.scalars(select(PlatformAlert)).one()
        batch = retry_alert(db, alert, admin, limit=3)
        assert (len(batch.retries), batch.remaining) == (3, 2)
    with database.session_scope() as db:
        alert = db.scalars(select(PlatformAlert)).one()
        assert (alert_summary(db, alert).retryable, alert_summary(db, alert).busy) == (2, 3)
        assert len(retry_alert(db, alert, admin, limit=3).retries) == 2
    with database.session_scope() as db:
        alert = db.scalars(select(PlatformAlert)).one()
        with pytest.raises(RetryInFlightError):
            retry_alert(db, alert, admin)
        assert len(db.scalars(select(TaskRetry)).all()) == 5


def test_retry_all_on_a_grouped_alert_reaches_every_failing_stores_run(
    database: Database, key: str
) -> None:
    admin = _admin(database)
    stores = range(1, STORM_STORES + 2)
    for store in stores:  # the first stores open their own alerts, then the storm folds them
        with database.session_scope() as db:
            report = _report(f"celery:s{store}:failure", store=store, keys=key, storm=True)
            record_failures(db, [report], cooldown=timedelta(minutes=15))
    with database.session_scope() as db:
        grouped = db.scalars(select(PlatformAlert).where(PlatformAlert.fingerprint == FINGERPRINT))
        batch = retry_alert(db, grouped.one(), admin)
        assert sorted(r.failed_task_id for r in batch.retries) == sorted(
            f"celery:s{store}:failure" for store in stores
        )


def test_retention_removes_runs_and_retries_past_the_cutoff(database: Database, key: str) -> None:
    admin = _admin(database)
    _record(database, _report("celery:a:failure", keys=key))
    with database.session_scope() as db:
        retry_notification(db, _notification(db, "celery:a:failure"), admin)
    assert prune(database, timedelta(days=1), dry_run=False).retries == 0
    report = prune(database, timedelta(0), dry_run=False, now=None)
    assert report.retries == 2
    with database.session_scope() as db:
        assert db.scalars(select(FailedRun)).all() == []
        assert db.scalars(select(TaskRetry)).all() == []


def test_cli_makes_a_key_and_reseals_kept_arguments_with_the_first(
    database: Database, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from notifier.cli import cli

    runner = CliRunner()
    new = runner.invoke(cli, ["retry-key"]).output.strip()
    assert unseal(seal([1], {}, new), new) == ([1], {})
    _record(database, _report("celery:a:failure", keys=key))
    monkeypatch.setenv("NOTIFIER_RETRY_KEY", f"{new},{key}")
    result = runner.invoke(cli, ["reseal-retries", "--database-url", database.url])
    assert result.exit_code == 0, result.output
    assert "Sealed 1 failed runs" in result.output
    with database.session_scope() as db:
        payload = db.scalars(select(FailedRun.payload)).one()
    assert unseal(payload or "", new) == ([1], {"csv_path": SECRET})  # the old key may go
