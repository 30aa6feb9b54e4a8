"""Live push: commit -> bell latency in a real browser, 500 open streams, memory per stream.

On PostgreSQL (LISTEN/NOTIFY), two identical ``notifier serve --workers 2 --max-streams
<streams + 10>`` side by side on one database:

1. 500 event streams opened on the first (raw sockets, bearer token), its workers' memory
   before and after (RSS, psutil);
2. the API (GET /recent) timed on both servers, one request each in turn, the order
   swapped every round, so the machine's noise hits "with streams" and "without" alike:
   p50/p95 of each and their ratio;
3. a commit through the core (as the worker's drainer records a failure) -> the event
   on an open stream, and -> the badge of a real chromium's bell (Playwright), p50/p95.

    .venv/bin/python bench/bench_live.py [--streams 500] [--samples 30] [--requests 1000]
                                         [--redis redis://127.0.0.1:6379/0]

``--redis URL``: the same on a SQLite file with ``NOTIFIER_LIVE_REDIS_URL`` (Redis pub/sub
fan-out: the commits of this process publish, each server process subscribes).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notifier import admin_notification_service  # noqa: E402
from notifier.accounts.tokens import create_token  # noqa: E402
from notifier.accounts.users import create_admin  # noqa: E402
from notifier.db import Database  # noqa: E402
from notifier.migrate import upgrade  # noqa: E402

ADMIN_URL = os.environ.get(
    "NOTIFIER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DB_NAME = "notifier_bench_live"
API = "/api/v1/admin/notifications"
EMAIL, PASSWORD = "bench@example.com", "bench-password-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _get(port: int, path: str, token: str) -> float:
    """One GET on a fresh connection, in milliseconds."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit(data[:200])
    return (time.perf_counter() - start) * 1000


def _side_by_side(
    busy: int, idle: int, token: str, requests: int, round_size: int = 50
) -> tuple[list[float], list[float]]:
    """GET /recent on both servers in turn (order swapped every round); ms for each."""
    path = f"{API}/recent?limit=5"
    with_streams: list[float] = []
    without: list[float] = []
    for n in range(requests):
        if (n // round_size) % 2:
            without.append(_get(idle, path, token))
            with_streams.append(_get(busy, path, token))
        else:
            with_streams.append(_get(busy, path, token))
            without.append(_get(idle, path, token))
    return with_streams, without


def _serve(url: str, port: int, streams: int, redis: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFIER_DATABASE_URL": url, "NOTIFIER_SECRET_KEY": "bench"}
    if redis:
        env["NOTIFIER_LIVE_REDIS_URL"] = redis
    command = [
        str(Path(sys.executable).parent / "notifier"), "serve", "--port", str(port),
        "--workers", "2", "--threads", "4", "--max-streams", str(streams + 10),
        "--no-access-log",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return server


def _open_stream(port: int, token: str) -> tuple[socket.socket, int]:
    """An open stream, and how many 503s it took (the kernel hands a new connection to
    either worker; one whose streams are full refuses, as a browser's would be, which then
    polls and tries again)."""
    for refused in range(50):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        request = f"GET {API}/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        sock.sendall(request.encode())
        head = b""
        while b"event: unread" not in head and b"\r\n\r\n{" not in head:
            head += sock.recv(4096)
        if head.startswith(b"HTTP/1.1 200"):
            return sock, refused
        sock.close()
    raise SystemExit(f"50 refusals in a row: {head[:400]!r}")


def _workers_rss(server: subprocess.Popen[bytes]) -> int:
    return sum(child.memory_info().rss for child in psutil.Process(server.pid).children())


def _browser_latency(base: str, database: Database, samples: int) -> list[float]:
    """Commit -> the bell's badge changes, in a real chromium, in milliseconds."""
    from playwright.sync_api import sync_playwright

    timings = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(f"{base}/admin/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        time.sleep(2)  # the bell opens its stream (an open one has no resource timing yet)
        for n in range(samples):
            before = page.locator("[data-badge]").text_content()
            start = time.perf_counter()
            with database.session_scope() as db:
                admin_notification_service.notify_critical_error(
                    db, error_type=f"Bench{n}", error_message="disk full"
                )
            page.wait_for_function(
                "(before) => document.querySelector('[data-badge]').textContent !== before",
                arg=before,
                timeout=10_000,
            )
            timings.append((time.perf_counter() - start) * 1000)
            time.sleep(0.2)
        browser.close()
    return timings


def _stream_latency(stream: socket.socket, database: Database, samples: int) -> list[float]:
    """Commit -> the ``notification`` event on an open stream, in milliseconds."""
    stream.settimeout(10)
    timings = []
    for n in range(samples):
        start = time.perf_counter()
        with database.session_scope() as db:
            admin_notification_service.notify_critical_error(
                db, error_type=f"Stream{n}", error_message="m"
            )
        data = b""
        while b"event: notification" not in data:
            data += stream.recv(65536)
        timings.append((time.perf_counter() - start) * 1000)
        time.sleep(0.05)
    return timings


def main() -> None:
    """Create the database, serve, measure, print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--requests", type=int, default=1000, help="API requests per server, side by side"
    )
    parser.add_argument("--redis", help="SQLite + Redis pub/sub fan-out on this Redis URL")
    args = parser.parse_args()

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    scratch = tempfile.TemporaryDirectory(prefix="bench_live_")
    if args.redis:
        url = f"sqlite:///{scratch.name}/notifier.db"
    else:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
        url = make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)
    upgrade(url)
    database = Database(url, live_redis_url=args.redis)
    with database.session_scope() as db:
        user = create_admin(db, email=EMAIL, password=PASSWORD)
        _, token = create_token(db, user=user, name="bench")
    port, idle_port = _free_port(), _free_port()
    servers = [
        _serve(url, port, args.streams, args.redis),
        _serve(url, idle_port, args.streams, args.redis),
    ]
    server = servers[0]
    streams: list[socket.socket] = []
    try:
        for _ in range(30):
            _get(port, f"{API}/recent?limit=5", token)
            _get(idle_port, f"{API}/recent?limit=5", token)
        rss_before = _workers_rss(server)
        refusals = 0
        for n in range(args.streams):
            try:
                stream, refused = _open_stream(port, token)
            except TimeoutError:
                raise SystemExit(f"stream {n + 1} did not open within 10 s") from None
            streams.append(stream)
            refusals += refused
        time.sleep(2)
        rss_after = _workers_rss(server)
        busy, idle = _side_by_side(port, idle_port, token, args.requests)
        on_stream = _stream_latency(streams[0], database, args.samples)
        in_browser = _browser_latency(f"http://127.0.0.1:{port}", database, args.samples)
    finally:
        for sock in streams:
            sock.close()
        for running in servers:
            running.terminate()
            running.wait(timeout=30)
        database.dispose()
        if not args.redis:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        admin.dispose()
        scratch.cleanup()

    idle_p50, idle_p95 = statistics.median(idle), _percentile(idle, 95)
    busy_p50, busy_p95 = statistics.median(busy), _percentile(busy, 95)
    per_stream = (rss_after - rss_before) / args.streams / 1024
    print("| measure | p50 | p95 |")
    print("|---|---:|---:|")
    print(f"| GET recent, server with no stream open (ms) | {idle_p50:.2f} | {idle_p95:.2f} |")
    print(f"| GET recent, server with {args.streams} streams open (ms) | {busy_p50:.2f} | "
          f"{busy_p95:.2f} |")  # fmt: skip
    print(f"| ratio with / without streams | {busy_p50 / idle_p50:.2f}x | "
          f"{busy_p95 / idle_p95:.2f}x |")  # fmt: skip
    print(f"| commit -> event on a stream (ms) | {statistics.median(on_stream):.1f} | "
          f"{_percentile(on_stream, 95):.1f} |")  # fmt: skip
    print(f"| commit -> badge in chromium's bell (ms) | {statistics.median(in_browser):.1f} | "
          f"{_percentile(in_browser, 95):.1f} |")  # fmt: skip
    print(f"\nworkers' RSS: {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB with "
          f"{args.streams} streams: {per_stream:.0f} KiB per stream; {refusals} refusals (503) "
          "while opening them")  # fmt: skip


if __name__ == "__main__":
    main()
