"""Real beats on the bundled app: one that ticks many times and two at once send one digest per
admin (Redis broker, prefork worker, PostgreSQL, SMTP on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier import Database, admin_notification_service
from notifier.accounts.users import create_admin
from notifier.models import Digest
from notifier.preferences.store import save_preferences
from tests.receivers import MailSink
from tests.worker.conftest import wait_for

ADMINS = [f"admin{n}" for n in range(5)]


def _sent(database: Database) -> int:
    with database.session_scope() as db:
        return len([s for s in db.scalars(select(Digest.status)) if s == "sent"])


@pytest.mark.slow
def test_two_beats_ticking_many_times_send_one_digest_per_admin(
    worker_database: Database,
    redis_url: str,
    smtp_server: tuple[str, MailSink],
    tmp_path: Path,
) -> None:
    url, sink = smtp_server
    with worker_database.session_scope() as db:
        for name in ADMINS:
            admin = create_admin(
                db, email=f"{name}@shop.example", password="pw-123456", display_name=name
            )
            save_preferences(db, admin.id, {"digest": {"frequency": "hourly", "hour": 0}})
        for n in range(3):
            admin_notification_service.create_notification(
                db, type="import_failure", priority="low", title=f"import {n}", message="m"
            )
    env = {
        **os.environ,
        "NOTIFIER_BROKER_URL": redis_url,
        "NOTIFIER_DATABASE_URL": worker_database.url,
        "NOTIFIER_INSTANCE_PATH": str(tmp_path),
        "NOTIFIER_SMTP_URL": url,
        "NOTIFIER_MAIL_FROM": "notifier@shop.example",
        "NOTIFIER_DIGEST_EVERY": "1",
    }
    celery = [sys.executable, "-m", "celery", "-A", "notifier.worker.app"]
    logs = [tmp_path / name for name in ("worker.log", "beat1.log", "beat2.log")]
    commands = [
        [*celery, "worker", "-P", "prefork", "-c", "2", "-l", "INFO", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        [*celery, "beat", "-l", "INFO", "--max-interval", "1", "-s", str(tmp_path / "beat1")],
        [*celery, "beat", "-l", "INFO", "--max-interval", "1", "-s", str(tmp_path / "beat2")],
    ]  # fmt: skip
    handles = [log.open("ab") for log in logs]
    processes = [
        subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
        for command, handle in zip(commands, handles, strict=True)
    ]

    def ticks(log: Path) -> int:
        return log.read_text().count("Sending due task notifier-digests")

    def finished() -> int:
        return logs[0].read_text().count("Task notifier.digests[")

    try:
        wait_for(lambda: _sent(worker_database) == len(ADMINS), timeout=60)
        # Both beats keep ticking after the digests went out; the worker runs those too.
        wait_for(lambda: ticks(logs[1]) >= 3 and ticks(logs[2]) >= 3, timeout=30)
        wait_for(lambda: finished() >= 6, timeout=30)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in handles:
            handle.close()
    for name in ADMINS:
        [digest] = sink.to(f"{name}@shop.example")
        assert digest["Subject"] == "Your hourly digest: 3 notifications, 0 alerts"
    assert _sent(worker_database) == len(ADMINS)
