"""The web commands: create-token, revoke-token, and serve (a real gunicorn process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifier.cli import _load_plugins, cli
from notifier.db import Database
from notifier.migrate import upgrade
from notifier.models import ApiToken
from notifier.tokens import hash_token
from tests.web.conftest import API, Admin, make_admin


@pytest.fixture
def run(database: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose environment points at the test database."""
    _load_plugins()
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", database.url)
    monkeypatch.setenv("NOTIFIER_SECRET_KEY", "test")
    return CliRunner()


def test_create_token_prints_it_once_on_the_last_line(
    run: CliRunner, admin: Admin, database: Database
) -> None:
    result = run.invoke(cli, ["create-token", admin.email, "--name", "ci"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("ntf_") and len(token) > 40
    with database.session_scope() as db:
        row = db.query(ApiToken).one()
        assert row.token_hash == hash_token(token) and row.name == "ci"
        assert row.user_id == admin.id
    assert token not in result.stdout.strip().splitlines()[0]


def test_create_token_for_unknown_admin_fails_cleanly(run: CliRunner) -> None:
    result = run.invoke(cli, ["create-token", "nobody@example.com"])
    assert result.exit_code == 1
    assert "no admin with email" in result.output and "Traceback" not in result.output


def test_revoke_token_by_prefix_and_by_id(run: CliRunner, admin: Admin, database: Database) -> None:
    first = run.invoke(cli, ["create-token", admin.email]).stdout.strip().splitlines()[-1]
    run.invoke(cli, ["create-token", admin.email])
    result = run.invoke(cli, ["revoke-token", first[:12]])
    assert result.exit_code == 0 and "Revoked API token" in result.output
    assert "already revoked" in run.invoke(cli, ["revoke-token", first[:12]]).output
    with database.session_scope() as db:
        second = db.query(ApiToken).filter(ApiToken.revoked_at.is_(None)).one()
        second_id = second.id
    assert run.invoke(cli, ["revoke-token", str(second_id)]).exit_code == 0
    with database.session_scope() as db:
        assert db.query(ApiToken).filter(ApiToken.revoked_at.is_(None)).count() == 0
    missing = run.invoke(cli, ["revoke-token", "ntf_nonexistent"])
    assert missing.exit_code == 1 and "no API token" in missing.output
    assert run.invoke(cli, ["revoke-token", "bogus"]).exit_code == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``notifier serve`` on a free port (1 worker, 2 threads) over a SQLite file."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(url)
    database = Database(url)
    admin = make_admin(database)
    database.dispose()
    env = {**os.environ, "NOTIFIER_DATABASE_URL": url, "NOTIFIER_SECRET_KEY": "x"}
    token = (
        subprocess.run(
            [sys.executable, "-m", "notifier.cli", "create-token", admin.email],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from notifier.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base, token
    finally:
        process.terminate()
        process.wait(timeout=15)


def _get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
def test_serve_answers_concurrent_requests(served: tuple[str, str]) -> None:
    base, token = served
    assert _get(f"{base}{API}/unread-count", "wrong") == 401
    # A client stuck halfway through its request holds one thread; others are still served.
    stuck = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    stuck.sendall(b"GET " + API.encode() + b"/unread-count HTTP/1.1\r\nHost: x\r\n")
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: _get(f"{base}{API}/unread-count", token), range(40)))
        assert statuses == [200] * 40
    finally:
        stuck.close()


@pytest.mark.slow
def test_serve_imports_a_factory_from_the_current_folder(tmp_path: Path) -> None:
    """Like ``flask --app``: the project folder is importable without PYTHONPATH."""
    url = f"sqlite:///{tmp_path / 'host.db'}"
    (tmp_path / "shopapp.py").write_text(
        "from flask import Flask\n"
        "from notifier.web import NotifierWeb\n\n"
        "def make():\n"
        "    app = Flask('shop')\n"
        "    app.config['SECRET_KEY'] = 'x'\n"
        "    app.add_url_rule('/shop', 'shop', lambda: 'shop home')\n"
        "    NotifierWeb(app)\n"
        "    return app\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NOTIFIER_DATABASE_URL")}
    port = _free_port()
    notifier = str(Path(sys.executable).with_name("notifier"))
    process = subprocess.Popen(
        [notifier, "serve", "--app", "shopapp:make", "--port", str(port), "--workers", "1",
         "--database-url", url],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/shop", timeout=2) as answer:
                    body = answer.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body == "shop home"
    finally:
        process.terminate()
        process.wait(timeout=15)
