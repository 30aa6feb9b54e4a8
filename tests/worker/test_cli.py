"""``notifier spool status`` and ``notifier spool retry``, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _notifier(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "NOTIFIER_INSTANCE_PATH": str(cwd / "instance")}
    notifier = str(Path(sys.executable).with_name("notifier"))
    return subprocess.run(
        [notifier, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_status_counts_pending_and_dead_and_retry_moves_dead_back(tmp_path: Path) -> None:
    spool = tmp_path / "instance" / "spool"
    (spool / "dead").mkdir(parents=True)
    (spool / "0001-1-00000001.json").write_text("{}")
    for n in range(2, 5):
        (spool / "dead" / f"000{n}-1-0000000{n}.json").write_text("{}")

    status = _notifier(tmp_path, "spool", "status")
    assert status.returncode == 0, status.stderr
    assert "Pending: 1 event(s)" in status.stdout
    assert "Dead: 3 event(s)" in status.stdout
    assert "0003-1-00000003.json" in status.stdout
    assert "notifier spool retry" in status.stdout

    retry = _notifier(tmp_path, "spool", "retry")
    assert retry.returncode == 0, retry.stderr
    assert "Moved 3 dead event(s) back" in retry.stdout
    assert sorted(p.name for p in spool.glob("*.json"))[-1] == "0004-1-00000004.json"
    assert list((spool / "dead").iterdir()) == []

    again = _notifier(tmp_path, "spool", "status")
    assert "Pending: 4 event(s)" in again.stdout and "Dead: 0 event(s)" in again.stdout
    assert "No dead events" in _notifier(tmp_path, "spool", "retry").stdout


def test_spool_folder_comes_from_the_celery_apps_conf(tmp_path: Path) -> None:
    spool = tmp_path / "shop-spool"
    (spool / "dead").mkdir(parents=True)
    (spool / "dead" / "0001-1-00000001.json").write_text("{}")
    (tmp_path / "worker.py").write_text(
        "from celery import Celery\n"
        "app = Celery('shop')\n"
        f"app.conf.notifier_spool_dir = {str(spool)!r}\n"
        f"app.conf.notifier_database_url = 'sqlite:///{tmp_path}/shop.db'\n"
    )
    status = _notifier(tmp_path, "spool", "status", "-A", "worker:app")
    assert status.returncode == 0, status.stderr
    assert f"Spool: {spool}" in status.stdout and "Dead: 1 event(s)" in status.stdout


def test_spool_folder_comes_from_the_app_even_with_a_database_url(tmp_path: Path) -> None:
    spool = tmp_path / "conf-spool"
    (spool / "dead").mkdir(parents=True)
    (tmp_path / "worker.py").write_text(
        "from celery import Celery\n"
        "app = Celery('shop')\n"
        f"app.conf.notifier_spool_dir = {str(spool)!r}\n"
    )
    status = _notifier(
        tmp_path, "spool", "status", "-A", "worker:app", "--database-url", "sqlite:///x.db"
    )
    assert status.returncode == 0, status.stderr
    assert f"Spool: {spool}" in status.stdout
