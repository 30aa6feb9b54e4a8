"""The demo's stand-ins for the outside world of deliveries: a webhook receiver and a mail sink.

Both listen on loopback and print one line per arrival, so a newcomer sees deliveries work
without any outside service: ``[webhook] alert.opened ... (signature verified)`` and
``[mail] to admin@example.com: [CRITICAL] ...``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from contextlib import suppress
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import click
from sqlalchemy import select

from notifier import Database, DeliveryChannel
from notifier.delivery import endpoint_service, sign_webhook
from notifier.models import DeliveryEndpoint

DEMO_ENDPOINT = "Demo webhook receiver"


class _Receiver(ThreadingHTTPServer):
    secret = ""


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        msg_id = self.headers.get("webhook-id", "")
        timestamp = int(self.headers.get("webhook-timestamp") or 0)
        expected = (
            sign_webhook(self.server.secret, msg_id, timestamp, body) if self.server.secret else ""
        )
        given = (self.headers.get("webhook-signature") or "").split(" ")
        verified = any(hmac.compare_digest(expected, s) for s in given if expected)
        with suppress(ValueError, KeyError, TypeError):
            event = json.loads(body)
            title = event["data"].get("title") or event["data"].get("message", "")
            click.echo(
                f"[webhook] {event['type']}: {title} "
                f"({'signature verified' if verified else 'SIGNATURE MISMATCH'})"
            )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Keep the demo's console to one line per delivery."""


class _MailSink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        click.echo(f"[mail] to {message['To']}: {message['Subject']}")
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_receivers(database_url: str) -> tuple[dict[str, str], Callable[[], None]]:
    """Start both stand-ins; returns the environment that points deliveries at them, and stop.

    The demo's webhook endpoint is created on the first run and pointed at this run's port
    afterwards. The mail sink needs aiosmtpd (installed by ``make demo``); without it the
    demo runs without email.
    """
    receiver = _Receiver(("127.0.0.1", 0), _ReceiverHandler)
    Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_port}/hooks/notifier"
    database = Database(database_url)
    try:
        with database.session_scope() as db:
            endpoint = db.scalar(
                select(DeliveryEndpoint).where(
                    DeliveryEndpoint.name == DEMO_ENDPOINT,
                    DeliveryEndpoint.channel == DeliveryChannel.WEBHOOK,
                )
            )
            if endpoint is None:
                endpoint, _ = endpoint_service.create(
                    db, name=DEMO_ENDPOINT, channel="webhook", url=url, allow_private=True
                )
            else:
                endpoint_service.update(db, endpoint, url=url, allow_private=True)
            receiver.secret = endpoint.secret or ""
    finally:
        database.dispose()
    env = {"NOTIFIER_DELIVERY_ALLOW_PRIVATE": "true"}
    stops: list[Callable[[], None]] = [receiver.shutdown, receiver.server_close]
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        click.echo("note: aiosmtpd is not installed, so the demo sends no email")
    else:
        controller = Controller(_MailSink(), hostname="127.0.0.1", port=_free_port())
        controller.start()
        stops.append(controller.stop)
        env |= {
            "NOTIFIER_SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
            "NOTIFIER_MAIL_FROM": "notifier@example.com",
        }

    def stop() -> None:
        for step in stops:
            with suppress(Exception):
                step()

    return env, stop
