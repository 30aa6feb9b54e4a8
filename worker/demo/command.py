"""``notifier demo``: a worker, the web UI and failing demo jobs, on the embedded defaults."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from notifier import (
    AlertType,
    Database,
    DuplicateAdminError,
    Settings,
    Severity,
    platform_alert_service,
    upgrade,
)
from notifier.accounts import create_admin
from notifier.cli import settings_options
from notifier.models import PlatformAlert

from ..spool import database_tag
from .health import enqueue_health, health_env
from .receivers import start_receivers

DEMO_EMAIL = "admin@example.com"
_PASSWORD_FILE = "demo-admin-password"  # noqa: S105 (a file name, not a password)


def _demo_admin(settings: Settings) -> str:
    """Create the demo admin once; its password is kept in the instance folder (0600)."""
    path = settings.instance_path / _PASSWORD_FILE
    password = path.read_text().strip() if path.exists() else secrets.token_urlsafe(12)
    database = Database.from_settings(settings)
    try:
        with database.session_scope() as db:
            create_admin(db, email=DEMO_EMAIL, password=password, display_name="Demo admin")
    except DuplicateAdminError:
        if not path.exists():
            return "(the password you chose for it: the admin existed before the demo)"
    finally:
        database.dispose()
    path.write_text(password)
    path.chmod(0o600)
    return password


def _open_root_cause(settings: Settings) -> None:
    """Open a root cause, as the worker would after an outage: it holds back its symptoms."""
    database = Database.from_settings(settings)
    fingerprint = "notifier:demo:database-unreachable"
    open_one = select(PlatformAlert.id).where(
        PlatformAlert.fingerprint == fingerprint, PlatformAlert.is_resolved.is_(False)
    )
    try:
        with database.session_scope() as db:
            if db.scalar(open_one) is not None:  # a demo run again counts nothing twice
                return
            platform_alert_service.create_or_increment_alert(
                db,
                alert_type=AlertType.DATABASE,
                severity=Severity.CRITICAL,
                title="Database unreachable from the worker (demo)",
                fingerprint=fingerprint,
                description=(
                    "Opened by the demo. The warehouse imports that fail with a connection "
                    "error are held back by it: recorded and shown, not delivered. Resolve it "
                    "and one summary of what it held back goes out."
                ),
                affected_systems=["database"],
                explains=f"database:{database_tag(settings.database_url)}",
            )
    finally:
        database.dispose()


class _Marketplace(ThreadingHTTPServer):
    """A stand-in marketplace API: store 1 has an order with an unknown SKU, store 2 is down."""


class _MarketplaceHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if "/stores/2/" in self.path:
            self.send_response(503)
            self.end_headers()
            return
        body = (
            b'{"orders": [{"number": "LS-1001", "items": [{"sku": "DEMO-1"}]},'
            b' {"number": "LS-1002", "items": [{"sku": "DEMO-1"}, {"sku": "NOT-IN-CATALOGUE"}]}]}'
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Keep the demo's console quiet."""


def _demo_files(instance: Path) -> dict[str, str]:
    folder = instance / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["sku,title,price,stock", "DEMO-1,Demo mug,9.90,12", "DEMO-2,Demo cap,15,3"]
    rows += [f"BAD-{n},Broken row,not-a-price,1" for n in range(6)]
    products = folder / "products.csv"
    products.write_text("\n".join(rows) + "\n", encoding="utf-8")
    latin1 = folder / "products-latin1.csv"
    latin1.write_bytes("sku,title,price,stock\nDEMO-3,Café crème,3,1\n".encode("latin-1"))
    return {"products": str(products), "latin1": str(latin1)}


#: The jobs whose pool process dies (killed, or past its hard time limit) run on a worker of
#: their own with one pool process. The demo's broker (kombu's SQLAlchemy transport) has no
#: asynchronous I/O, so Celery runs billiard's blocking pool, whose processes share the
#: locks of one task pipe: a process killed at the wrong moment can leave such a lock taken,
#: and every other process of that pool waits on it for good (celery/billiard#104). Alone
#: on a pool of one, a killed job cannot hold up the others. Redis and RabbitMQ workers run
#: the asynchronous pool, one pipe per process, and need none of this.
KILLED_QUEUE = "notifier-demo-killed"
_KILLED = frozenset(("notifier.demo.crash", "notifier.demo.too_slow"))


def _enqueue(files: dict[str, str]) -> list[str]:
    """Send the demo jobs; returns one line per job saying what it will show."""
    from ..app import app  # the bundled app, configured from celeryconfig

    when = "2026-01-01"
    plan: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
        ("notifier.import_products", (1, files["products"]), {}, "6 bad rows -> import_failure"),
        ("notifier.import_products", (1, files["latin1"]), {}, "not UTF-8 -> import_failure"),
        (
            "notifier.import_letzshop_orders",
            (1, when),
            {},
            "unknown SKU -> order_exception",
        ),
        (
            "notifier.import_letzshop_orders",
            (2, when),
            {},
            "API down, retried -> sync failure",
        ),
        ("notifier.demo.crash", (3,), {}, "pool child SIGKILLed -> capacity alert"),
        ("notifier.demo.too_slow", (4,), {}, "hard time limit -> performance alert"),
        ("notifier.demo.soft_limit", (5,), {}, "soft time limit -> performance alert"),
        ("notifier.demo.flaky", (6,), {}, "fails once, retry succeeds -> nothing"),
        (
            "notifier.demo.nightly_report",
            ("secret-token",),
            {},
            "generic job -> critical notification",
        ),
        ("notifier.demo.stock_check", (8,), {}, "generic job -> normal store issue"),
        ("notifier.demo.newsletter", (), {}, "generic job -> low-priority info"),
        *(
            (
                "notifier.demo.warehouse_import",
                (store,),
                {},
                "database away -> held back by the root cause",
            )
            for store in (9, 10, 11)
        ),
    ]
    lines = []
    # Fixed task ids: a demo run again records nothing twice (the failure keys are known).
    for n, (name, args, kwargs, what) in enumerate(plan):
        queue = KILLED_QUEUE if name in _KILLED else None
        app.send_task(name, args=args, kwargs=kwargs, task_id=f"notifier-demo-{n}", queue=queue)
        lines.append(f"  {name}{args!r}: {what}")
    for n in range(20):  # a storm: one notification, an alert counting 20
        app.send_task("notifier.demo.price_feed", args=(7,), task_id=f"notifier-demo-storm-{n}")
    lines.append("  20 x notifier.demo.price_feed(7,): a storm -> 1 notification, alert x20")
    return lines + enqueue_health(app)


def _notifier_command() -> str:
    """The ``notifier`` script of this environment."""
    return shutil.which("notifier") or str(Path(sys.executable).with_name("notifier"))


def _serve_available() -> bool:
    notifier = _notifier_command()
    with suppress(OSError, subprocess.TimeoutExpired):
        done = subprocess.run(
            [notifier, "serve", "--help"], capture_output=True, timeout=30, check=False
        )
        return done.returncode == 0
    return False


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
        if process.poll() is None:
            process.kill()
            process.wait(5)
        # A worker killed past the deadline (a warm shutdown waits for a running job) leaves
        # its embedded beat behind, still sending: each worker leads a process group of its
        # own, and whatever is left of that group goes with it.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _check_port_free(host: str, port: int) -> None:
    """Stop before starting anything when another server already listens on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"port {port} on {host} is already in use ({exc.strerror}); another server "
                f"answers there. Stop it, or pick a free port: `make demo PORT={port + 1}` "
                f"or `notifier demo --port {port + 1}`"
            ) from exc


@click.command("demo")
@settings_options()
@click.option("--host", default="127.0.0.1", show_default=True, help="Web UI address.")
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Web UI port."
)
@click.option("--no-web", is_flag=True, help="Start only the worker, not the web UI.")
@click.option(
    "--run-seconds", type=float, default=None, help="Stop after this long (default: until Ctrl-C)."
)
def demo(settings: Settings, host: str, port: int, no_web: bool, run_seconds: float | None) -> None:
    """Start a worker and the web UI on the embedded defaults and enqueue failing jobs."""
    if not no_web:
        _check_port_free(host, port)
    upgrade(settings.database_url)
    click.echo(f"Database ready: {settings.database_url}")
    password = _demo_admin(settings)

    marketplace = _Marketplace(("127.0.0.1", 0), _MarketplaceHandler)
    threading.Thread(target=marketplace.serve_forever, daemon=True).start()
    delivery_env, stop_receivers = start_receivers(settings.database_url)
    env = {
        **os.environ,
        **delivery_env,
        "NOTIFIER_PUBLIC_URL": f"http://{host}:{port}",
        "NOTIFIER_INSTANCE_PATH": str(settings.instance_path),
        "NOTIFIER_DATABASE_URL": settings.database_url,
        "NOTIFIER_LETZSHOP_URL": f"http://127.0.0.1:{marketplace.server_port}/api",
        "NOTIFIER_LETZSHOP_RETRY_DELAY": "2",
        **health_env(),
        # A beat entry that misses, seen by a watcher ticking every 5 s (see celeryconfig).
        "NOTIFIER_DEMO_MISSED_ENTRY": "1",
        "NOTIFIER_HEALTH_WATCH_EVERY": "5",
    }
    os.environ.update(env)  # the bundled app in this process reads the same settings
    log = settings.instance_path / "demo-worker.log"
    processes: list[subprocess.Popen[bytes]] = []
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        with log.open("ab") as log_handle:
            worker_cmd = [
                sys.executable, "-m", "celery", "-A", "notifier.worker.app", "worker",
                "--include", "notifier.worker.demo.tasks,notifier.worker.demo.health",
                "-P", "prefork", "-c", "2", "-l", "INFO",
                "-n", f"demo-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                # Beat inside the worker (one process is enough for a demo): retention and
                # the admins' digests on the package's schedule.
                "-B", "-s", str(settings.instance_path / "celerybeat-schedule"),
            ]  # fmt: skip
            killed_cmd = [
                sys.executable, "-m", "celery", "-A", "notifier.worker.app", "worker",
                "--include", "notifier.worker.demo.tasks", "-Q", KILLED_QUEUE,
                "-P", "prefork", "-c", "1", "-l", "INFO",
                "-n", f"demo-killed-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
            ]  # fmt: skip
            for command in (worker_cmd, killed_cmd):
                processes.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        stdout=log_handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # a group of its own, see _stop
                    )
                )
            click.echo(f"Celery workers and beat started (log: {log})")
            if no_web:
                click.echo("Web UI not started (--no-web).")
            elif _serve_available():
                serve = ["notifier", "serve", "--host", host, "--port", str(port)]
                notifier = shutil.which("notifier") or str(
                    Path(sys.executable).with_name("notifier")
                )
                processes.append(subprocess.Popen([notifier, *serve[1:]], env=env))
                click.echo(f"Web UI: http://{host}:{port}/admin/notifications")
            else:
                click.echo(
                    "note: `notifier serve` is not available in this install yet, so the web UI "
                    "is not started; the worker keeps running and records notifications in "
                    f"{settings.database_url}"
                )
            click.echo(f"Login: {DEMO_EMAIL} / {password}")
            _open_root_cause(settings)
            click.echo("Opened a root cause: 'Database unreachable from the worker (demo)'")
            click.echo(
                "Scheduled: notifier-demo-missed-report every 10 s, routed to a queue no "
                "worker consumes -> missed, on the Job health page and in the bell"
            )
            click.echo("Enqueued demo jobs:")
            for line in _enqueue(_demo_files(settings.instance_path)):
                click.echo(line)
            click.echo(
                "Notifications appear within seconds; deliveries to the local webhook receiver "
                "and mail sink print below as [webhook] and [mail]. Press Ctrl-C to stop."
            )
            deadline = None if run_seconds is None else time.monotonic() + run_seconds
            while not stopping.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if any(p.poll() is not None for p in processes):
                    click.echo("a demo process exited; stopping (see the log above)", err=True)
                    break
                stopping.wait(0.5)
    finally:
        click.echo("Stopping...")
        _stop(processes)
        marketplace.shutdown()
        marketplace.server_close()
        stop_receivers()
    click.echo("Stopped.")
