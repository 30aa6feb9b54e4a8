"""Latency of the admin API over real HTTP (``notifier serve``) on a big PostgreSQL database.

Loads 1,000,000 notifications (1% unread) and 10,000 alerts (``--notifications``,
``--alerts``) with COPY into a database of its own (the live-update triggers are skipped
while loading, as README says a bulk load may), starts ``notifier serve`` with an app that
also has a bench-only ``SELECT 1`` endpoint (same stack: gunicorn, Flask, bearer auth, a
session), and reports p50/p95/p99 of each endpoint measured round-robin in the same run,
next to that floor.

    .venv/bin/python bench/bench_api.py [--requests 1000] [--notifications N] [--alerts N]
                                        [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, jsonify
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notifier.accounts.tokens import create_token  # noqa: E402
from notifier.accounts.users import create_admin  # noqa: E402
from notifier.db import Database  # noqa: E402
from notifier.migrate import upgrade  # noqa: E402

ADMIN_URL = os.environ.get(
    "NOTIFIER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DB_NAME = "notifier_bench"
NOTIFICATIONS = 1_000_000
ALERTS = 10_000
API = "/api/v1/admin/notifications"
TYPES = ["import_failure", "order_sync_failure", "order_exception", "critical_error",
         "store_issue", "security_alert", "system_info"]  # fmt: skip
PRIORITIES = ["low"] * 20 + ["normal"] * 50 + ["high"] * 25 + ["critical"] * 5
SEVERITIES = ["info", "warning", "error", "critical"]
ALERT_TYPES = ["security", "performance", "capacity", "integration", "database", "system"]


def bench_app() -> Flask:
    """The real app plus a bench-only SELECT 1 endpoint (never part of the product)."""
    from notifier.web import create_app, current_admin, db_session

    app = create_app()
    floor = Blueprint("bench_floor", __name__)

    @floor.route("/bench/select1")
    def select1() -> Any:
        if current_admin() is None:  # same bearer check as the API
            return jsonify(error="unauthorized"), 401
        return jsonify(value=db_session().execute(text("SELECT 1")).scalar())

    app.register_blueprint(floor)
    return app


def _database_url() -> str:
    return make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)


def _create_database(reuse: bool) -> bool:
    """Create the bench database; returns whether it already held the data."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
        if exists and not reuse:
            conn.execute(text(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return bool(exists)


def _drop_database() -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()


def _load(url: str) -> None:
    """COPY the notifications and alerts in, with a progress bar."""
    import psycopg

    rng = random.Random(42)
    now = datetime.now(UTC)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        # No pg_notify per loaded row: nobody is listening, and 10M notices would be queued.
        cur.execute("SET session_replication_role = replica")
        columns = (
            "type, priority, title, message, is_read, read_at, action_required, "
            "notification_metadata, store_id, created_at"
        )
        batch = 50_000
        with tqdm(total=NOTIFICATIONS + ALERTS, unit="row", desc="loading") as bar:
            for start in range(0, NOTIFICATIONS, batch):
                with cur.copy(f"COPY notifier_admin_notifications ({columns}) FROM STDIN") as copy:
                    for i in range(start, min(start + batch, NOTIFICATIONS)):
                        created = now - timedelta(seconds=(NOTIFICATIONS - i) * 7)
                        unread = i % 100 == 0
                        copy.write_row(
                            (
                                TYPES[i % len(TYPES)],
                                rng.choice(PRIORITIES),
                                f"Import failed for store {i % 500}",
                                f"CSV parsing failed on row {i}: invalid column format",
                                not unread,
                                None if unread else created + timedelta(minutes=5),
                                i % 3 == 0,
                                json.dumps({"job_id": i, "store_name": f"Store {i % 500}"}),
                                i % 500,
                                created,
                            )
                        )
                bar.update(min(batch, NOTIFICATIONS - start))
            alert_columns = (
                "alert_type, severity, title, description, affected_stores, affected_systems, "
                "fingerprint, occurrence_count, first_occurred_at, last_occurred_at, "
                "is_resolved, resolved_at, resolution_notes, alert_metadata, created_at"
            )
            with cur.copy(f"COPY notifier_platform_alerts ({alert_columns}) FROM STDIN") as copy:
                for i in range(ALERTS):
                    first = now - timedelta(minutes=(ALERTS - i) * 13)
                    resolved = i % 10 != 0
                    copy.write_row(
                        (
                            ALERT_TYPES[i % len(ALERT_TYPES)],
                            SEVERITIES[i % len(SEVERITIES)],
                            f"Alert {i}",
                            "Something keeps failing",
                            json.dumps([i % 500]),
                            json.dumps(["sync"]),
                            f"bench:{i}",
                            1 + i % 50,
                            first,
                            first + timedelta(minutes=10),
                            resolved,
                            first + timedelta(hours=1) if resolved else None,
                            "fixed" if resolved else None,
                            "{}",
                            first,
                        )
                    )
            bar.update(ALERTS)
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE notifier_admin_notifications")
        cur.execute("VACUUM ANALYZE notifier_platform_alerts")


def _token(url: str) -> str:
    database = Database(url)
    with database.session_scope() as db:
        admin = create_admin(db, email=f"bench{time.time_ns()}@example.com", password="benchpass1")
        _, token = create_token(db, user=admin, name="bench")
    database.dispose()
    return token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": url,
        "NOTIFIER_SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).parent / "notifier"), "serve", "--port", str(port),
        "--workers", str(workers), "--threads", str(threads), "--app", "bench.bench_api:bench_app",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("notifier serve did not start: " + (process.stderr.read() or b"").decode())


def _measure(port: int, token: str, paths: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Round-robin over the endpoints on one keep-alive connection; milliseconds per request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {name: [] for name in paths}

    def call(path: str) -> float:
        start = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server may close an idle keep-alive connection (its --keepalive, a worker
            # restart); a GET is safe to send again on a fresh one, as browsers do.
            conn.close()
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        return elapsed

    for _ in range(30):  # warm up both workers' pools, caches and code paths
        for path in paths.values():
            call(path)
    for _ in tqdm(range(requests), desc="measuring", unit="round"):
        for name, path in paths.items():
            timings[name].append(call(path))
    conn.close()
    return timings


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _deep_cursor(url: str, position: int) -> str:
    """The list's cursor after its ``position``-th row (newest first), as a client holds it."""
    from notifier.notifications import NOTIFICATION_ORDER

    database = Database(url)
    with database.session_scope() as db:
        # Only the sort key: an index-only scan. Whole rows made PostgreSQL read 5,000,000
        # heap rows, past the 15 s statement timeout once they were no longer cached.
        row = db.execute(
            select(*NOTIFICATION_ORDER.columns)
            .order_by(*NOTIFICATION_ORDER.order_by())
            .offset(position - 1)
            .limit(1)
        ).one()
        cursor = NOTIFICATION_ORDER.encode(row)
    database.dispose()
    return cursor


def main() -> None:
    """Load (or reuse) the data, serve, measure, print a Markdown table."""
    global NOTIFICATIONS, ALERTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=NOTIFICATIONS)
    parser.add_argument("--alerts", type=int, default=ALERTS)
    parser.add_argument("--requests", type=int, default=1000, help="requests per endpoint")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help=f"keep the {DB_NAME} database")
    parser.add_argument("--reuse", action="store_true", help=f"reuse a kept {DB_NAME}")
    args = parser.parse_args()
    NOTIFICATIONS, ALERTS = args.notifications, args.alerts

    url = _database_url()
    loaded = _create_database(args.reuse)
    try:
        upgrade(url)
        if not loaded:
            started = time.perf_counter()
            _load(url)
            print(f"loaded {NOTIFICATIONS:,} notifications and {ALERTS:,} alerts "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        token = _token(url)
        deep = _deep_cursor(url, NOTIFICATIONS // 2)
        port = _free_port()
        server = _serve(url, port, args.workers, args.threads)
        try:
            paths = {
                "SELECT 1 (floor: HTTP + Flask + bearer auth + session)": "/bench/select1",
                "GET unread-count": f"{API}/unread-count",
                "GET recent (limit 5)": f"{API}/recent?limit=5",
                f"GET list, filtered by store (store_id=42, {NOTIFICATIONS // 500:,} matches)": (
                    f"{API}?store_id=42&limit=50"
                ),
                f"GET list, filtered broad (priority=high, ~{NOTIFICATIONS // 4:,} matches)": (
                    f"{API}?priority=high&skip=100&limit=50"
                ),
                f"GET list, unfiltered ({NOTIFICATIONS:,} matches)": f"{API}?limit=50",
                f"GET list, cursor at row {NOTIFICATIONS // 2:,}": f"{API}?limit=50&cursor={deep}",
                "GET alerts (open first)": f"{API}/alerts?limit=50",
                "GET alerts/stats": f"{API}/alerts/stats",
            }
            timings = _measure(port, token, paths, args.requests)
        finally:
            server.terminate()
            server.wait(timeout=15)
    finally:
        if not args.keep:
            _drop_database()

    floor = statistics.median(next(iter(timings.values())))
    print(f"\n{args.requests} requests per endpoint, round-robin, one keep-alive connection; "
          f"notifier serve --workers {args.workers} --threads {args.threads}\n")  # fmt: skip
    print("| endpoint | p50 ms | p95 ms | p99 ms | p50 / floor |")
    print("|---|---:|---:|---:|---:|")
    for name, values in timings.items():
        p50 = statistics.median(values)
        print(
            f"| {name} | {p50:.2f} | {_percentile(values, 95):.2f} | "
            f"{_percentile(values, 99):.2f} | {p50 / floor:.1f}x |"
        )


if __name__ == "__main__":
    main()
