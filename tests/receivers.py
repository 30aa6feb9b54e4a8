"""Real receivers on loopback for the delivery tests: an HTTP server and an SMTP server.

The fixtures ``receiver`` and ``smtp_server`` (tests/conftest.py) start them per test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A loopback HTTP receiver that answers from a script (then 204) and keeps every request."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], bytes | float]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        """The receiver's URL (``host`` may be a name that resolves to loopback)."""
        return f"http://{host}:{self.port}{path}"

    def then(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """Answer the next request with ``status``."""
        self.script.append((status, headers or {}, body))

    def stall(self, seconds: float) -> None:
        """Make the next request wait ``seconds`` before answering 200."""
        self.script.append((200, {}, seconds))

    def ids(self) -> list[str]:
        """The ``webhook-id`` of every request, in arrival order."""
        return [r.headers.get("webhook-id", "") for r in self.requests]


def serve_receiver() -> Iterator[Receiver]:
    """Run a Receiver until the generator is closed."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append(
                    Received(self.path, dict(self.headers), body, time.monotonic())
                )
                status, headers, extra = state.script.popleft() if state.script else (204, {}, b"")
            if isinstance(extra, float | int) and not isinstance(extra, bytes):
                time.sleep(float(extra))
                extra = b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(extra)))
            self.end_headers()
            self.wfile.write(extra)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


class MailSink:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages addressed to ``address``."""
        return [m for m in self.messages if address in str(m["To"])]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_smtp() -> Iterator[tuple[str, MailSink]]:
    """A real SMTP server (aiosmtpd) on loopback: its smtp:// URL and what it received."""
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", sink
    finally:
        controller.stop()
