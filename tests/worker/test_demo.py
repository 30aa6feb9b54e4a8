"""``notifier demo`` on the embedded defaults: a real worker, demo jobs, notifications."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from notifier import Database
from notifier.models import AdminNotification, PlatformAlert

from .conftest import spool_pending, wait_for

pytestmark = pytest.mark.slow


def _count(database: Database, fingerprint: str) -> int:
    with database.session_scope() as db:
        alert = db.scalars(select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint))
        return sum(a.occurrence_count for a in alert)


def _start_demo(tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env["NOTIFIER_INSTANCE_PATH"] = str(tmp_path / "instance")
    notifier = str(Path(sys.executable).with_name("notifier"))
    return subprocess.Popen(
        [notifier, "demo", "--no-web", "--run-seconds", "120"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop_demo(demo: subprocess.Popen[bytes]) -> str:
    demo.send_signal(signal.SIGINT)
    output = demo.communicate(timeout=60)[0].decode()
    assert demo.returncode == 0, output
    return output


def _storm_runs(tmp_path: Path) -> int:
    """How many storm tasks the demo workers have finished, over every run so far."""
    log = tmp_path / "instance" / "demo-worker.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return len(re.findall(r"price_feed\[notifier-demo-storm-\d+\] raised", text))


def _snapshot(database: Database) -> tuple[int, int]:
    with database.session_scope() as db:
        notes = len(db.scalars(select(AdminNotification.id)).all())
        # Failures only: the job health alerts (a hung run, a queue) follow the clock.
        counted = sum(
            db.scalars(
                select(PlatformAlert.occurrence_count).where(
                    ~PlatformAlert.fingerprint.startswith("run:"),
                    ~PlatformAlert.fingerprint.startswith("queue:"),
                )
            ).all()
        )
    return notes, counted


def _settled(database: Database, quiet: float = 8.0) -> tuple[int, int]:
    """The snapshot once it stopped changing for ``quiet`` seconds (retries are done)."""
    last, since = _snapshot(database), time.monotonic()
    deadline = since + 90
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the demo's notifications never settled"
        time.sleep(0.5)
        now = _snapshot(database)
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_demo_enqueues_jobs_whose_failures_become_notifications(tmp_path: Path) -> None:
    demo = _start_demo(tmp_path)
    database = Database(f"sqlite:///{tmp_path / 'instance' / 'notifier.db'}")
    expected = {"import_failure", "order_exception", "order_sync_failure", "critical_error"}
    expected |= {"store_issue", "system_info"}

    def types() -> set[str]:
        try:
            with database.session_scope() as db:
                return {str(t) for t in db.scalars(select(AdminNotification.type))}
        except Exception:  # the demo has not created the schema yet
            return set()

    try:
        wait_for(lambda: types() >= expected, timeout=90, interval=1)
        with database.session_scope() as db:
            alerts = {a.fingerprint: a for a in db.scalars(select(PlatformAlert))}
        assert "celery:notifier.demo.crash:billiard.exceptions.WorkerLostError:store=3" in alerts
        feed = "celery:notifier.demo.price_feed:TimeoutError:store=7"
        wait_for(lambda: _count(database, feed) == 20)
        with database.session_scope() as db:
            storm = db.scalars(
                select(AdminNotification).where(AdminNotification.title.contains("storm store"))
            ).all()
        assert len(storm) == 1
        with database.session_scope() as db:
            priorities = {str(p) for p in db.scalars(select(AdminNotification.priority))}
            lost = db.scalars(
                select(AdminNotification.message).where(
                    AdminNotification.title.contains("crash store")
                )
            ).one()
        # every colour of the legend appears
        assert priorities == {"critical", "high", "normal", "low"}
        # billiard names the signal, or (its supervisor cleaned up first) says exit code 0.
        assert "SIGKILL (signal 9)" in lost and "before the task finished" in lost
        # Job health: the hanging job alerts, and so does the queue nobody consumes.
        hung = "run:overdue:notifier-demo-hang"
        unconsumed = "queue:no-consumer:notifier-demo-unconsumed"
        wait_for(lambda: _count(database, hung) and _count(database, unconsumed), 60, 1)
        # The beat entry routed to a queue nobody consumes is missed, and says so once.
        missed = "schedule:missed:notifier-demo-missed-report"
        wait_for(lambda: _count(database, missed) == 1, timeout=60, interval=1)
        before = _settled(database)
    finally:
        output = _stop_demo(demo)
    assert "Login: admin@example.com / " in output
    assert "Stopped." in output
    # Deliveries reached the demo's local receivers, signed and threaded as configured.
    assert "[webhook] notification.created: " in output
    assert "[webhook] alert.opened: " in output
    assert "(signature verified)" in output and "SIGNATURE MISMATCH" not in output
    assert "[mail] to admin@example.com: [CRITICAL] " in output

    # Run again on the same instance: the same jobs fail again, and nothing is recorded twice.
    demo = _start_demo(tmp_path)
    try:
        wait_for(lambda: _storm_runs(tmp_path) >= 40, timeout=90, interval=1)
        spool = tmp_path / "instance" / "spool"
        wait_for(lambda: spool_pending(spool) == 0, timeout=30, interval=0.5)
        time.sleep(2)  # the last batch commits
        assert _snapshot(database) == before
    finally:
        _stop_demo(demo)
        database.dispose()
    # Nothing of the demo outlives it: not a worker killed mid-job, nor its embedded beat.
    instance = str(tmp_path / "instance")
    left = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if instance in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []


def test_demo_stops_when_the_port_is_taken(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env["NOTIFIER_INSTANCE_PATH"] = str(tmp_path / "instance")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(Path(sys.executable).with_name("notifier")), "demo", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert f"make demo PORT={port + 1}" in result.stderr
    assert "http://" not in result.stdout + result.stderr
    assert not (tmp_path / "instance" / "demo-worker.log").exists()
