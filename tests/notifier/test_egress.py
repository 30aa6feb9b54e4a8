"""Outbound HTTP: the address rules, pinning, no redirects, the body cap, the timeout."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest
import urllib3

from notifier.delivery.egress import RESPONSE_BODY_LIMIT, check_url, post
from notifier.errors import DeliveryRefusedError
from tests.notifier.conftest import Receiver


def _url(receiver: Receiver, host: str = "127.0.0.1") -> str:
    return receiver.url("/hook?a=1", host=host)


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
        "https://[::ffff:8.8.8.8]/x",  # IPv4-mapped, even of a public address
        "https://[2606:4700::1111%25eth0]/x",  # a zone id names a local interface
        "https://[64:ff9b::a00:1]/x",  # NAT64 of 10.0.0.1
        "https://[::7f00:1]/x",  # IPv4-compatible 127.0.0.1
        "https://[::a9fe:a9fe]/x",  # IPv4-compatible 169.254.169.254
        "https://[fec0::1]/x",  # site-local
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


def test_localhost_names_are_refused_at_save_and_at_send(receiver: Receiver) -> None:
    for host in ("localhost", "localhost.", "hooks.localhost"):
        url = _url(receiver, host=host).replace("http://", "https://")
        with pytest.raises(DeliveryRefusedError, match="loopback"):
            check_url(url)
        with pytest.raises(DeliveryRefusedError, match="loopback"):
            post(url, b"{}", {})
    assert receiver.requests == []


def test_a_hostname_that_resolves_to_a_private_address_is_refused_at_save_and_at_send(
    receiver: Receiver,
) -> None:
    # This machine's own name resolves to a loopback or private address (here 127.0.0.1).
    host = socket.gethostname()
    answers = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    if all(ipaddress.ip_address(str(a)).is_global for a in answers):
        pytest.skip(f"{host} resolves to public addresses only")
    url = _url(receiver, host=host).replace("http://", "https://")
    with pytest.raises(DeliveryRefusedError, match="resolves to"):
        check_url(url)  # resolved once when saved ...
    with pytest.raises(DeliveryRefusedError, match="resolves to"):
        post(url, b"{}", {})  # ... and again, and refused, when used
    assert receiver.requests == []


def test_a_name_that_does_not_resolve_yet_is_accepted_at_save_and_refused_at_send() -> None:
    url = "https://hooks.invalid/in"  # RFC 6761: .invalid never resolves
    check_url(url)
    with pytest.raises(DeliveryRefusedError, match="does not resolve"):
        post(url, b"{}", {})


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.169.254.", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
    ],
)
def test_every_numeric_ipv4_spelling_is_read_as_its_address(
    receiver: Receiver, host: str, address: str
) -> None:
    url = f"https://{host}:{receiver.port}/x"
    with pytest.raises(DeliveryRefusedError, match="not a public address"):
        check_url(url)
    # Allowed (local development), the send goes to the address the spelling names.
    if address == "127.0.0.1":
        response = post(url.replace("https", "http"), b"{}", {}, allow_private=True)
        assert response.status == 204 and len(receiver.requests) == 1


def test_with_allow_private_a_loopback_receiver_gets_the_body_and_headers(
    receiver: Receiver,
) -> None:
    response = post(
        _url(receiver, host="localhost"),
        b'{"hello":"world"}',
        {"content-type": "application/json", "webhook-id": "msg_1"},
        allow_private=True,
    )
    assert response.status == 204
    [request] = receiver.requests
    assert request.path == "/hook?a=1"
    assert request.body == b'{"hello":"world"}'
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["Host"] == f"localhost:{receiver.port}"


def test_redirects_are_returned_not_followed(receiver: Receiver) -> None:
    receiver.then(302, {"Location": "http://127.0.0.1:1/internal"})
    response = post(_url(receiver), b"{}", {}, allow_private=True)
    assert response.status == 302
    assert len(receiver.requests) == 1


def test_only_the_first_kib_of_a_response_is_kept(receiver: Receiver) -> None:
    receiver.then(500, body=b"x" * 100_000)
    response = post(_url(receiver), b"{}", {}, allow_private=True)
    assert response.status == 500
    assert len(response.body) == RESPONSE_BODY_LIMIT


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.stall(3.0)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.TimeoutError):
        post(_url(receiver), b"{}", {}, allow_private=True, timeout=0.5)
    assert time.monotonic() - started < 2.5
