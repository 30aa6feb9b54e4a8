"""Outbound HTTP: the address rules, pinning, no redirects, the body cap, the timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3

from notifier.egress import RESPONSE_BODY_LIMIT, check_url, post
from notifier.errors import DeliveryRefusedError


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]
    behaviour: str = "ok"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        behaviour = self.server.behaviour  # type: ignore[attr-defined]
        if behaviour == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/internal")
            self.end_headers()
        elif behaviour == "big":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"x" * 100_000)
        elif behaviour == "slow":
            time.sleep(3)
            self.send_response(200)
            self.end_headers()
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    server.behaviour = "ok"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.server_address[1]}/hook?a=1"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://10.0.0.5/x",
        "https://192.168.1.1/x",
        "https://172.16.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/x",  # CGNAT
        "https://[::1]/x",
        "https://[fd00::1]/x",  # ULA
        "https://[fe80::1]/x",  # link-local
        "https://[::ffff:127.0.0.1]/x",  # IPv4-mapped loopback
        "https://[64:ff9b::a00:1]/x",  # NAT64 of 10.0.0.1
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
    ],
)
def test_non_public_literal_addresses_are_refused(url: str) -> None:
    with pytest.raises(DeliveryRefusedError, match="not a public address"):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "only https"),
        ("ftp://hooks.example.com/x", "only https"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com:99999/x", "port"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(DeliveryRefusedError, match=why):
        check_url(url)


def test_a_hostname_that_resolves_to_loopback_is_refused_at_send_time(
    receiver: ThreadingHTTPServer,
) -> None:
    url = _url(receiver, host="localhost").replace("http://", "https://")
    check_url(url)  # the name itself looks fine when saved ...
    with pytest.raises(DeliveryRefusedError, match="resolves to"):
        post(url, b"{}", {})  # ... but it is resolved and refused when used
    assert receiver.received == []  # type: ignore[attr-defined]


def test_with_allow_private_a_loopback_receiver_gets_the_body_and_headers(
    receiver: ThreadingHTTPServer,
) -> None:
    response = post(
        _url(receiver, host="localhost"),
        b'{"hello":"world"}',
        {"content-type": "application/json", "webhook-id": "msg_1"},
        allow_private=True,
    )
    assert response.status == 204
    [(path, headers, body)] = receiver.received  # type: ignore[attr-defined]
    assert path == "/hook?a=1"
    assert body == b'{"hello":"world"}'
    assert headers["webhook-id"] == "msg_1"
    assert headers["Host"] == f"localhost:{receiver.server_address[1]}"


def test_redirects_are_returned_not_followed(receiver: ThreadingHTTPServer) -> None:
    receiver.behaviour = "redirect"  # type: ignore[attr-defined]
    response = post(_url(receiver), b"{}", {}, allow_private=True)
    assert response.status == 302
    assert len(receiver.received) == 1  # type: ignore[attr-defined]


def test_only_the_first_kib_of_a_response_is_kept(receiver: ThreadingHTTPServer) -> None:
    receiver.behaviour = "big"  # type: ignore[attr-defined]
    response = post(_url(receiver), b"{}", {}, allow_private=True)
    assert response.status == 500
    assert len(response.body) == RESPONSE_BODY_LIMIT


def test_a_slow_receiver_times_out(receiver: ThreadingHTTPServer) -> None:
    receiver.behaviour = "slow"  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.TimeoutError):
        post(_url(receiver), b"{}", {}, allow_private=True, timeout=0.5)
    assert time.monotonic() - started < 2.5
