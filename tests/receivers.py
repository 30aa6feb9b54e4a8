"""Real receivers on loopback for the delivery tests: an HTTP server and an SMTP server.

The fixtures ``receiver`` and ``smtp_server`` (tests/conftest.py) start them per test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
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


#: How a receiver answers a request its script does not: (status, headers, body).
Answer = Callable[[bytes], tuple[int, dict[str, str], bytes]]


@dataclass
class Receiver:
    """A loopback HTTP receiver that answers from a script (then 204) and keeps every request."""

    answer: Answer | None = None
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


def serve_receiver(answer: Answer | None = None) -> Iterator[Receiver]:
    """Run a Receiver until the generator is closed; ``answer`` replaces the 204."""
    state = Receiver(answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append(
                    Received(self.path, dict(self.headers), body, time.monotonic())
                )
                if state.script:
                    status, headers, extra = state.script.popleft()
                elif state.answer is not None:
                    status, headers, extra = state.answer(body)
                else:
                    status, headers, extra = 204, {}, b""
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


# -- PagerDuty Events API v2 ------------------------------------------------------------
# The fields and limits of "Send an Alert Event" (PagerDuty developer docs, Events API v2):
# routing_key (32 characters) and event_action required; dedup_key at most 255 characters;
# a trigger's payload needs summary (at most 1,024), source and severity (one of four);
# images need an https src; links need an href. PagerDuty answers 202 or 400.

_EVENT_KEYS = {
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "images",
    "links",
    "client",
    "client_url",
}
_PAYLOAD_KEYS = {
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
}


def _optional_text(errors: list[str], where: dict[str, Any], key: str, name: str) -> None:
    if key in where and not isinstance(where[key], str):
        errors.append(f"{name} must be a string")


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["payload is required for a trigger and must be an object"]
    errors = [f"payload.{key} is not a field" for key in sorted(set(payload) - _PAYLOAD_KEYS)]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) > 1024:
        errors.append("payload.summary is required, at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("payload.source is required")
    if payload.get("severity") not in ("critical", "error", "warning", "info"):
        errors.append("payload.severity must be critical, error, warning or info")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]))
        except ValueError:
            errors.append("payload.timestamp must be an ISO 8601 time")
    for key in ("component", "group", "class"):
        _optional_text(errors, payload, key, f"payload.{key}")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("payload.custom_details must be an object")
    return errors


def _context_errors(event: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for link in event.get("links", []) if isinstance(event.get("links", []), list) else [0]:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append("links[] needs an href")
        elif set(link) - {"href", "text"}:
            errors.append("links[] has only href and text")
    for image in event.get("images", []) if isinstance(event.get("images", []), list) else [0]:
        if not isinstance(image, dict) or not str(image.get("src", "")).startswith("https://"):
            errors.append("images[] needs an https src")
        elif set(image) - {"src", "href", "alt"}:
            errors.append("images[] has only src, href and alt")
    return errors


def events_v2_errors(body: bytes) -> list[str]:
    """What PagerDuty would refuse in ``body`` (empty: a valid Events API v2 alert event)."""
    try:
        event = json.loads(body)
    except ValueError:
        return ["the body is not JSON"]
    if not isinstance(event, dict):
        return ["the event must be an object"]
    errors = [f"{key} is not a field" for key in sorted(set(event) - _EVENT_KEYS)]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("routing_key must be the 32-character integration key")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("event_action must be trigger, acknowledge or resolve")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        errors.append("dedup_key must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errors.append(f"dedup_key is required to {action}")
    if action == "trigger":
        errors += _payload_errors(event.get("payload"))
    for name in ("client", "client_url"):
        _optional_text(errors, event, name, name)
    return errors + _context_errors(event)


def events_v2_answer(body: bytes) -> tuple[int, dict[str, str], bytes]:
    """PagerDuty's answer: 202 with the dedup_key, or 400 listing what is wrong."""
    errors = events_v2_errors(body)
    if errors:
        answer = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        return 400, {"Content-Type": "application/json"}, json.dumps(answer).encode()
    event = json.loads(body)
    answer = {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}
    return 202, {"Content-Type": "application/json"}, json.dumps(answer).encode()


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
