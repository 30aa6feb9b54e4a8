"""``notifier demo`` on the embedded defaults: a real worker, demo jobs, notifications."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier import AdminNotification, Database, PlatformAlert

from .conftest import wait_for

pytestmark = pytest.mark.slow


def _count(database: Database, fingerprint: str) -> int:
    with database.session_scope() as db:
        alert = db.scalars(select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint))
        return sum(a.occurrence_count for a in alert)


def test_demo_enqueues_jobs_whose_failures_become_notifications(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env["NOTIFIER_INSTANCE_PATH"] = str(tmp_path / "instance")
    notifier = str(Path(sys.executable).with_name("notifier"))
    demo = subprocess.Popen(
        [notifier, "demo", "--no-web", "--run-seconds", "120"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    database = Database(f"sqlite:///{tmp_path / 'instance' / 'notifier.db'}")
    expected = {"import_failure", "order_exception", "order_sync_failure", "critical_error"}

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
        assert "celery:notifier.demo.crash:billiard.exceptions.WorkerLostError" in alerts
        wait_for(lambda: _count(database, "celery:notifier.demo.price_feed:TimeoutError") == 20)
        with database.session_scope() as db:
            storm = db.scalars(
                select(AdminNotification).where(AdminNotification.title.contains("storm store"))
            ).all()
        assert len(storm) == 1
    finally:
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=60)[0].decode()
        database.dispose()
    assert demo.returncode == 0, output
    assert "Login: admin@example.com / " in output
    assert "Stopped." in output


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
