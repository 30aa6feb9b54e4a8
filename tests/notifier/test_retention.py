"""Retention: old read notifications and resolved alerts go, in batches; the rest stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from notifier import Database
from notifier import admin_notification_service as notes
from notifier import platform_alert_service as alerts
from notifier.cli import cli
from notifier.config import parse_age
from notifier.errors import ValidationError
from notifier.models import AdminNotification, PlatformAlert
from notifier.retention import prune
from notifier.types import utcnow


def _age_everything(database: Database, days: int) -> None:
    old = utcnow() - timedelta(days=days)
    with database.session_scope() as db:
        db.execute(update(AdminNotification).values(created_at=old))
        db.execute(update(PlatformAlert).where(PlatformAlert.is_resolved).values(resolved_at=old))


def _seed(database: Database) -> None:
    with database.session_scope() as db:
        for n in range(7):
            note = notes.notify_critical_error(db, error_type=f"E{n}", error_message="m")
            if n < 5:
                notes.mark_as_read(db, note.id, user_id=None)
        for n in range(3):
            alert, _ = alerts.create_or_increment_alert(
                db, alert_type="system", severity="info", title="t", fingerprint=f"f{n}"
            )
            if n < 2:
                alerts.resolve_alert(db, alert.id, user_id=None, resolution_notes="done")


def _counts(database: Database) -> tuple[int, int]:
    with database.session_scope() as db:
        n = db.scalar(select(func.count()).select_from(AdminNotification))
        a = db.scalar(select(func.count()).select_from(PlatformAlert))
    return int(n or 0), int(a or 0)


def test_prune_removes_only_old_read_and_resolved_rows_in_batches(database: Database) -> None:
    _seed(database)
    # nothing is old yet
    assert prune(database, timedelta(days=90), dry_run=False).notifications == 0
    _age_everything(database, 100)
    dry = prune(database, timedelta(days=90), dry_run=True)
    assert (dry.notifications, dry.alerts, dry.dry_run) == (5, 2, True)
    assert _counts(database) == (7, 3)  # a dry run deletes nothing
    done = prune(database, timedelta(days=90), dry_run=False, batch=2)  # 3 batches
    assert (done.notifications, done.alerts) == (5, 2)
    # the unread notifications and the open alert stay, however old
    assert _counts(database) == (2, 1)


def test_prune_command_dry_runs_first_then_applies(database: Database) -> None:
    _seed(database)
    _age_everything(database, 100)
    runner = CliRunner()
    url = ["--database-url", database.url]
    dry = runner.invoke(cli, ["prune", "--older-than", "90d", *url])
    assert dry.exit_code == 0, dry.output
    assert "Would remove 5 read notifications and 2 resolved alerts" in dry.output
    assert "--apply" in dry.output and _counts(database) == (7, 3)
    applied = runner.invoke(cli, ["prune", "--older-than", "13w", "--apply", *url])
    assert "Removed 5 read notifications and 2 resolved alerts" in applied.output
    assert _counts(database) == (2, 1)
    bad = runner.invoke(cli, ["prune", "--older-than", "soon", *url])
    assert bad.exit_code == 2 and "e.g. 90d" in bad.output


@pytest.mark.parametrize("text", ["", "0d", "90", "90y", "-1d", "1.5d"])
def test_bad_ages_say_what_to_write(text: str) -> None:
    with pytest.raises(ValidationError, match="90d"):
        parse_age(text)
    assert parse_age(" 36h ") == timedelta(hours=36)
