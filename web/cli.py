"""The web commands: serve, create-token, revoke-token (entry points ``notifier.commands``)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from notifier import Database, Settings, metrics
from notifier.accounts import TokenNotFoundError, create_token, find_token, revoke_token
from notifier.cli import existing_admin, settings_options

from .live import end_streams

#: Seconds an idle keep-alive connection stays open. Longer than the idle timeout of common
#: proxies and load balancers in front of it (nginx and AWS ALB: 60 s), so the proxy always
#: closes first; the other way round, a proxy reusing a connection the server just closed
#: answers its client 502.
KEEPALIVE_DEFAULT = 75
# After the response, gunicorn discards an unread request body of up to 64 KiB so the
# connection can serve another request; it gives up on a larger one and closes the
# connection, after having answered "Connection: keep-alive". A client that believed it
# sends its next request into a closed socket. Such requests are told "close" up front.
_DRAINED_BODY_MAX = 64 * 1024


def _close_after_large_body(_worker: Any, req: Any) -> None:
    """Gunicorn ``pre_request`` hook: answer ``Connection: close`` if the body may go unread."""
    for name, value in req.headers:
        if (name == "CONTENT-LENGTH" and value.isdigit() and int(value) > _DRAINED_BODY_MAX) or (
            name == "TRANSFER-ENCODING" and "chunked" in value.lower()
        ):
            req.force_close()
            return


class _Worker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's ``gthread`` worker that ends its open streams as soon as it is told to stop.

    A stream never finishes by itself: a stop (SIGTERM: graceful; SIGINT: quick) waited out
    ``--graceful-timeout`` and then cut them. Ended, they close cleanly, the worker has no
    request left and exits at once, and each client reconnects with its ``Last-Event-ID``.
    """

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)  # first: a stream that ends now sees the stop
        end_streams()

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False
        end_streams()
        super().handle_quit(sig, frame)  # exits

    def handle_request(self, req: Any, conn: Any) -> bool:
        keep_alive = bool(super().handle_request(req, conn))
        # A response that ends after the stop began (the streams ended above) closes its
        # connection: gunicorn would keep it 2 s more for a next request, but a browser
        # reconnects a stream only after its `retry:` (3 s), so the worker would just wait.
        return keep_alive and self.alive


class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn running an app factory once in each worker (after the fork, never before)."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def _worker_exited(_server: Any, worker: Any) -> None:
    """Gunicorn hook: a worker that exited leaves the live gauges of a multiprocess scrape."""
    metrics.process_exiting(worker.pid)


def _import_factory(spec: str) -> Callable[[], Any]:
    module_name, _, attribute = spec.partition(":")
    # As with `flask --app`: the project folder the command runs from is importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attribute or "create_app")
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot import {spec!r}: {exc}", param_hint="--app") from exc
    if not callable(factory):
        raise click.BadParameter(f"{spec!r} is not callable", param_hint="--app")
    return factory  # type: ignore[no-any-return]


@click.command("serve")
@settings_options("-A", "--celery-app")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=min(4, os.cpu_count() or 1),
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (each runs its own app and database pool).",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker: requests served at once by each process.",
)
@click.option(
    "--max-streams",
    default=64,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Live event streams each worker holds, on threads of their own (beyond --threads).",
)
@click.option(
    "--keepalive",
    default=KEEPALIVE_DEFAULT,
    show_default=True,
    type=click.IntRange(0, 3600),
    help="Seconds an idle keep-alive connection is kept; keep it above your proxy's idle "
    "timeout (0 closes after every response).",
)
@click.option(
    "--timeout",
    default=30,
    show_default=True,
    type=click.IntRange(1, 3600),
    help="Seconds a worker may go silent (a request stuck that long) before it is restarted.",
)
@click.option(
    "--graceful-timeout",
    default=10,
    show_default=True,
    type=click.IntRange(0, 3600),
    help="Seconds running requests get to finish on a restart or stop.",
)
@click.option(
    "--max-requests",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Restart each worker after about this many requests (0: never), to cap slow leaks.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log each request to stderr.",
)
@click.option(
    "--app",
    "app_spec",
    default="notifier.web:create_app",
    show_default=True,
    help="App factory MODULE:CALLABLE, for a host app that mounts NotifierWeb itself.",
)
def serve(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    threads: int,
    max_streams: int,
    keepalive: int,
    timeout: int,
    graceful_timeout: int,
    max_requests: int,
    access_log: bool,
    app_spec: str,
) -> None:
    """Serve the admin API and pages with gunicorn (threaded workers)."""
    # Settings were read (and checked) here, so a mistake stops with a sentence, not in each
    # worker; the factory reads the same URL from the environment after the fork.
    os.environ["NOTIFIER_DATABASE_URL"] = settings.database_url
    # A live stream holds one thread, blocked on its queue (no CPU, no database connection):
    # each worker gets --max-streams threads for them on top of --threads, and refuses
    # (503) a stream beyond that, so streams never take the threads API requests need.
    os.environ["NOTIFIER_MAX_STREAMS"] = str(max_streams)
    factory = _import_factory(app_spec)
    click.echo(
        f"Serving {app_spec} on http://{host}:{port}/ "
        f"({workers}x{threads} threads, {max_streams} streams each)",
        err=True,
    )
    _Server(
        factory,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": _Worker,
            "threads": threads + max_streams,
            "child_exit": _worker_exited,
            # gthread's cap on open connections per worker; streams are long-lived ones.
            "worker_connections": max(1000, 2 * (threads + max_streams)),
            "timeout": timeout,
            "graceful_timeout": graceful_timeout,
            "keepalive": keepalive,
            "max_requests": max_requests,
            "max_requests_jitter": max_requests // 10,
            "pre_request": _close_after_large_body,
            # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn), which
            # two servers (or a test run next to a demo) would fight over; nothing uses it.
            "control_socket_disable": True,
            "accesslog": "-" if access_log else None,
            "errorlog": "-",
            "loglevel": "info",
        },
    ).run()


@click.command("create-token")
@settings_options()
@click.argument("email")
@click.option("--name", default="", help="A label to recognise the token by (e.g. 'ci').")
def create_token_command(settings: Settings, email: str, name: str) -> None:
    """Create an API token for an admin; it is printed once, alone on the last line."""
    with existing_admin(settings, email) as (db, admin):
        token, plaintext = create_token(db, user=admin, name=name)
        token_id, prefix = token.id, token.prefix
    click.echo(f"Created API token {token_id} ({prefix}...) for {email}.")
    click.echo(
        "It is stored hashed and shown only now; send it as 'Authorization: Bearer <token>':"
    )
    click.echo(plaintext)


@click.command("revoke-token")
@settings_options()
@click.argument("token_key", metavar="ID_OR_PREFIX")
def revoke_token_command(settings: Settings, token_key: str) -> None:
    """Revoke an API token by its id or the prefix shown at creation (e.g. ntf_AbCd1234)."""
    database = Database.from_settings(settings)
    try:
        with database.session_scope() as db:
            token = find_token(db, token_key)
            changed = revoke_token(db, token)
            token_id, prefix = token.id, token.prefix
    except TokenNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    if changed:
        click.echo(f"Revoked API token {token_id} ({prefix}...).")
    else:
        click.echo(f"API token {token_id} ({prefix}...) was already revoked.")
