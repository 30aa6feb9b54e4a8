"""The web commands: create-token, revoke-token, and serve (a real gunicorn process)."""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import psutil
import pytest
import requests
from click.testing import CliRunner

from notifier.accounts.tokens import hash_token
from notifier.cli import _load_plugins, cli
from notifier.db import Database
from notifier.migrate import upgrade
from notifier.models import ApiToken
from tests.web.conftest import API, Admin, make_admin, make_token


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


@contextmanager
def notifier_serve(
    tmp_path: Path, database_url: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``notifier serve`` subprocess on ``args``; its log goes to ``tmp_path``."""
    environment = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_SECRET_KEY": "x",
        "NOTIFIER_INSTANCE_PATH": str(tmp_path / "instance"),
        **(env or {}),
    }
    port = args[args.index("--port") + 1]
    log = (tmp_path / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from notifier.cli import main; main()", "serve", *args],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(150):
            if process.poll() is not None:
                raise AssertionError((tmp_path / f"serve-{port}.log").read_text()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``notifier serve`` on a free port (1 worker, 2 threads) over a SQLite file."""
    with serving(tmp_path) as server:
        yield server


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[tuple[str, str]]:
    """``notifier serve`` with ``options`` on a free port over a SQLite file."""
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
    port = str(_free_port())
    args = ("--port", port, "--workers", "1", "--threads", "2", *options)
    with notifier_serve(tmp_path, url, *args):
        yield f"http://127.0.0.1:{port}", token


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


# -- serving: throttles across workers, keep-alive, oversized bodies, control socket ------

# Tests of the server itself, whatever the database: SQLite alone is enough.
SERVER_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _worker_holding(server: subprocess.Popen[bytes], conn: http.client.HTTPConnection) -> int:
    """The pid of the gunicorn worker that holds the server side of ``conn``."""
    assert conn.sock is not None
    local_port = conn.sock.getsockname()[1]
    for child in psutil.Process(server.pid).children():
        if any(c.raddr and c.raddr.port == local_port for c in child.net_connections("tcp")):
            return int(child.pid)
    raise AssertionError("no worker holds the connection")


def _login_form(conn: http.client.HTTPConnection, cookie: str | None) -> tuple[str, str]:
    """GET the login page on ``conn``; returns the session cookie and the form's CSRF token."""
    conn.request("GET", "/admin/login", headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    html = response.read().decode()
    cookie = cookie or response.getheader("Set-Cookie", "").split(";", 1)[0]
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match and cookie, html
    return cookie, match.group(1)


@pytest.mark.slow
def test_the_login_limit_holds_across_two_workers(
    tmp_path: Path, pg_database: Database, redis_url: str
) -> None:
    port = str(_free_port())
    env = {"NOTIFIER_RATELIMIT_STORAGE_URL": redis_url}
    args = ("--port", port, "--workers", "2", "--threads", "2")
    with notifier_serve(tmp_path, pg_database.url, *args, env=env) as server:
        # Keep-alive connections stay with the worker that accepted them: open connections
        # until two are held by different workers, then alternate failed logins between them.
        conns: dict[int, http.client.HTTPConnection] = {}
        cookie: str | None = None
        csrf = ""
        for _ in range(50):
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
            cookie, csrf = _login_form(conn, cookie)
            conns.setdefault(_worker_holding(server, conn), conn)
            if len(conns) == 2:
                break
        assert len(conns) == 2, "the kernel gave every connection to one worker"
        body = urlencode({"email": "a@example.com", "password": "wrong", "csrf_token": csrf})
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        statuses = []
        for attempt in range(8):
            conn = list(conns.values())[attempt % 2]
            conn.request("POST", "/admin/login", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        for conn in conns.values():
            conn.close()
    # 5 failed logins per address and email in all, not 5 per worker
    assert statuses == [401] * 5 + [429] * 3


@SERVER_ONLY
@pytest.mark.slow
def test_oversized_bodies_leave_the_connection_usable(tmp_path: Path, database: Database) -> None:
    token = make_token(database, make_admin(database))
    port = str(_free_port())
    with notifier_serve(tmp_path, database.url, "--port", port, "--workers", "1"):
        base = f"http://127.0.0.1:{port}{API}"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        statuses: list[int] = []
        errors: list[str] = []
        for i in range(30):
            # 64 KiB + 1 up to ~1 MiB: every one over the limit, most beyond what gunicorn drains
            oversized = {
                "type": "system_info",
                "title": "t",
                "message": "x" * (65_537 + i * 33_000),
            }
            for method, url, body in (
                ("POST", base, oversized),
                ("GET", f"{base}/unread-count", None),
            ):
                try:
                    statuses.append(session.request(method, url, json=body, timeout=10).status_code)
                except requests.ConnectionError as exc:
                    errors.append(repr(exc))
        session.close()
    assert errors == []
    assert statuses == [413, 200] * 30


@SERVER_ONLY
@pytest.mark.slow
def test_a_connection_idle_longer_than_five_seconds_is_still_served(
    tmp_path: Path, database: Database
) -> None:
    port = str(_free_port())
    with notifier_serve(tmp_path, database.url, "--port", port, "--workers", "1"):
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        conn.request("GET", "/admin/login")
        conn.getresponse().read()
        assert conn.sock is not None
        first_socket = conn.sock.getsockname()
        time.sleep(6.5)  # gunicorn's own default keep-alive is 2 s; this server's was 5 s
        conn.request("GET", "/admin/login")  # raises RemoteDisconnected if the server closed
        assert conn.getresponse().status == 200
        assert conn.sock is not None and conn.sock.getsockname() == first_socket
        conn.close()


@SERVER_ONLY
def test_two_servers_share_no_control_socket(tmp_path: Path, database: Database) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    ports = [str(_free_port()), str(_free_port())]
    with (
        notifier_serve(tmp_path, database.url, "--port", ports[0], "--workers", "1", env=env),
        notifier_serve(tmp_path, database.url, "--port", ports[1], "--workers", "1", env=env),
    ):
        for port in ports:
            assert requests.get(f"http://127.0.0.1:{port}/admin/login", timeout=10).ok
        assert not (home / ".gunicorn").exists()


@pytest.mark.slow
def test_serve_holds_its_streams_on_threads_of_their_own(tmp_path: Path) -> None:
    with serving(tmp_path, "--max-streams", "3") as (base, token):
        streams = []
        try:
            for _ in range(3):
                request = urllib.request.Request(
                    f"{base}{API}/stream", headers={"Authorization": f"Bearer {token}"}
                )
                response = urllib.request.urlopen(request, timeout=5)
                assert response.status == 200
                assert response.readline() == b"retry: 3000\n"
                streams.append(response)
            # The fourth is refused (the client polls instead) ...
            assert _get(f"{base}{API}/stream", token) == 503
            # ... and the API's own threads (--threads 2) still answer many at once.
            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(pool.map(lambda _: _get(f"{base}{API}/recent", token), range(12)))
            assert statuses == [200] * 12
        finally:
            for response in streams:
                response.close()


def _open_stream(
    base: str, token: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """A stream opened on its own connection, read up to its first event."""
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=20)
    conn.request("GET", f"{API}/stream", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.readline() == b"retry: 3000\n"
    return conn, response


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_serve_ends_open_streams_at_once(
    tmp_path: Path, database: Database, signum: int
) -> None:
    token = make_token(database, make_admin(database))
    port = str(_free_port())
    args = ("--port", port, "--workers", "1", "--graceful-timeout", "30")
    with notifier_serve(tmp_path, database.url, *args) as server:
        base = f"http://127.0.0.1:{port}"
        streams = [_open_stream(base, token) for _ in range(2)]
        stopped = time.monotonic()
        server.send_signal(signum)
        for _conn, response in streams:
            # the rest of the stream and its last chunk: an end, not a cut (IncompleteRead)
            assert b"event: unread" in response.read()
        # As a browser does: keep the connection until the server closes it, then close.
        open_sockets = [conn.sock for conn, _ in streams]
        while open_sockets:
            readable, _, _ = select.select(open_sockets, [], [], 10)
            assert readable, "the server kept the ended streams' connections open"
            for sock in readable:
                assert sock.recv(1) == b""
                sock.close()
                open_sockets.remove(sock)
        server.wait(timeout=15)
        # About a second, not the 30 s --graceful-timeout: the streams ended, so the worker
        # had nothing left to wait for (the bound is loose for a busy test machine).
        assert time.monotonic() - stopped < 10
        assert server.returncode == 0


@pytest.mark.slow
def test_a_stream_its_client_closed_frees_its_slot_at_once(tmp_path: Path) -> None:
    with serving(tmp_path, "--max-streams", "1") as (base, token):
        conn, _ = _open_stream(base, token)
        assert _get(f"{base}{API}/stream", token) == 503  # the one slot is taken
        conn.close()
        # Long before the 15 s heartbeat that used to find the client gone: the server sees
        # the connection close and frees the slot at once (the bound is loose for a busy
        # test machine).
        deadline = time.monotonic() + 8
        while (status := _get(f"{base}{API}/stream", token)) == 503:
            assert time.monotonic() < deadline, "the closed stream still holds its slot"
            time.sleep(0.05)
        assert status == 200


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
