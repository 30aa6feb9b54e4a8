"""Outbound HTTP to URLs that admins typed in: webhooks, Slack, Teams.

A URL saved as safe can point somewhere else by the time it is used (DNS rebinding), and a
redirect can send a request inside the network (SSRF). So every send resolves the host once,
refuses the whole send if *any* address it resolves to is not a public unicast address, and
connects to the checked address itself (the hostname still goes in ``Host`` and in TLS SNI
and certificate checks). Redirects are never followed. ``allow_private`` (for tests and
local development only) lifts the address rule and allows plain ``http``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

from ..errors import DeliveryRefusedError

__all__ = ["Client", "Response", "check_at_send", "check_url", "post"]

TOTAL_TIMEOUT = 15.0
RESPONSE_BODY_LIMIT = 1024
#: Seconds a save waits for a URL's host to resolve before accepting it unjudged.
SAVE_RESOLVE_TIMEOUT = 3.0

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: the status, the first KiB of the body, the headers, the duration."""

    status: int
    body: str
    headers: dict[str, str]
    duration: float


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    address: str
    path: str


_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # ::a.b.c.d, deprecated by RFC 4291
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# A single numeric part of a host as inet_aton reads it: hex, octal (leading 0), decimal.
_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*")


def _is_public(ip: _IP) -> bool:
    """Whether a delivery may go to ``ip``: the one rule, at save and at every send."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None or ip in _IPV4_COMPATIBLE or ip.scope_id:
            # ::ffff:a.b.c.d and ::a.b.c.d are IPv4 addresses in disguise (refused outright,
            # as filters judging only v6 ranges miss them); a zone id names a local interface.
            return False
        if ip.is_site_local:  # fec0::/10: deprecated, but still routed inside some networks
            return False
        # A v6 address that carries a v4 one (6to4, Teredo) is judged by the v4 one.
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return _is_public(embedded)
        if ip in _NAT64:
            return _is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    # is_global is False for loopback, RFC 1918, link-local, CGNAT (100.64/10), ULA, ...
    return ip.is_global and not ip.is_multicast


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as the address inet_aton (and so the system resolver) reads it, or None.

    Besides a.b.c.d it takes a, a.b and a.b.c (the last part filling the remaining bytes),
    each part decimal, hex (0x7f) or octal (0177), and a trailing dot: 2130706433, 0x7f.1
    and 127.0.0.1. all name 127.0.0.1, and none of them is what ip_address() accepts.
    """
    parts = host.removesuffix(".").split(".")
    if len(parts) > 4 or not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    numbers = [
        int(part, 0) if part[:2].lower() == "0x" else int(part, 8 if part[0] == "0" else 10)
        for part in parts
    ]
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _literal_address(host: str) -> _IP | None:
    """The address ``host`` spells out itself (no lookup needed), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _numeric_ipv4(host)


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Refuse a URL that cannot be sent to (scheme, credentials, or a non-public host).

    Its scheme, credentials, or a host that is or now
    resolves to a non-public address (a name is resolved again, and judged, at each send).

    A name that does not resolve (yet) is accepted: the send will say so.
    """
    _, host, port, _ = _parse(url, allow_private=allow_private)
    if allow_private or _literal_address(host) is not None:
        return
    with contextlib.suppress(_Unresolved):
        _addresses(host, port, timeout=SAVE_RESOLVE_TIMEOUT)


def check_at_send(url: str, *, allow_private: bool = False) -> None:
    """Refuse ``url`` as a send does: as :func:`check_url`, and a name must resolve now.

    For a sender that connects on its own (Apprise): the address it then connects to is
    its resolver's answer, not pinned to the one judged here.
    """
    _resolve(url, allow_private=allow_private)


def _parse(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. a bracketed host that is no IPv6 address
        raise DeliveryRefusedError(f"the URL is not valid ({exc})") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise DeliveryRefusedError(f"only {' or '.join(allowed)} URLs can be delivered to")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise DeliveryRefusedError(f"the URL's port is not valid ({exc})") from None
    if not host:
        raise DeliveryRefusedError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise DeliveryRefusedError("credentials in the URL are not allowed; use a secret")
    literal = _literal_address(host)
    if not allow_private:
        if literal is not None and not _is_public(literal):
            raise DeliveryRefusedError(f"{host} is not a public address")
        if host.removesuffix(".").lower().rsplit(".", 1)[-1] == "localhost":
            # RFC 6761: localhost and every name under it are loopback, whatever DNS says.
            raise DeliveryRefusedError(f"{host} is loopback, not a public address")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


class _Unresolved(DeliveryRefusedError):
    """The host has no address (or the lookup gave up)."""


def _lookup(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _Unresolved(f"{host} does not resolve ({exc.strerror})") from None
    return [str(info[4][0]) for info in infos]


def _try_lookup(host: str, port: int) -> list[str] | _Unresolved:
    try:
        return _lookup(host, port)
    except _Unresolved as exc:
        return exc


def _addresses(host: str, port: int, *, timeout: float | None = None) -> list[str]:
    """Every address the name ``host`` resolves to; refused if any is not public.

    ``timeout``: give up (``_Unresolved``) after that many seconds; the lookup thread is
    left to finish on its own, so a save never waits out a slow resolver.
    """
    if timeout is None:
        addresses = _lookup(host, port)
    else:
        # A thread of its own (a daemon), not a pool: nothing to rebuild after a fork.
        answer: list[list[str] | _Unresolved] = []
        thread = threading.Thread(
            target=lambda: answer.append(_try_lookup(host, port)), daemon=True
        )
        thread.start()
        thread.join(timeout)
        if not answer:
            raise _Unresolved(f"{host} did not resolve within {timeout:g} s")
        if isinstance(answer[0], _Unresolved):
            raise answer[0]
        addresses = answer[0]
    for address in addresses:
        if not _is_public(ipaddress.ip_address(address.split("%", 1)[0])):
            raise DeliveryRefusedError(f"{host} resolves to {address}, not a public address")
    return addresses


def _resolve(url: str, *, allow_private: bool) -> _Target:
    scheme, host, port, path = _parse(url, allow_private=allow_private)
    literal = _literal_address(host)
    if literal is not None:  # already judged; connect to exactly the address it spells
        address = str(literal)
    elif allow_private:
        address = _lookup(host, port)[0]
    else:
        address = _addresses(host, port)[0]
    return _Target(scheme, host, port, address, path)


def _drained(response: urllib3.BaseHTTPResponse, limit: int = 64 * 1024) -> bool:
    """Read the rest of a body, up to ``limit`` bytes; True when it ended (reusable)."""
    while limit > 0:
        chunk = response.read(min(limit, 16 * 1024), decode_content=True)
        if not chunk:
            return True
        limit -= len(chunk)
    return False


class Client:
    """Sends under the rules above, keeping connections open between sends to one address.

    Every send still resolves and checks the host; connections are kept per *checked*
    address (with the hostname for TLS), so a name that now resolves elsewhere gets a new,
    checked connection, never the old one. Meant to live for one dispatcher run (seconds),
    so a kept connection never goes stale for long; ``close()`` closes them all.
    """

    def __init__(self, *, per_address: int = 4, max_addresses: int = 32) -> None:
        self.per_address = per_address
        self.max_addresses = max_addresses
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pool(self, target: _Target) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, target.host, target.port, target.address)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                return pool
            if len(self._pools) >= self.max_addresses:
                self._pools.pop(next(iter(self._pools))).close()
            if target.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    target.address,
                    target.port,
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=certifi.where(),
                    maxsize=self.per_address,
                    retries=False,
                )
            else:
                pool = urllib3.HTTPConnectionPool(
                    target.address, target.port, maxsize=self.per_address, retries=False
                )
            self._pools[key] = pool
            return pool

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        allow_private: bool = False,
        timeout: float = TOTAL_TIMEOUT,
    ) -> Response:
        """POST ``body`` to ``url`` under the rules above; a 3xx is returned, never followed.

        Raises DeliveryRefusedError when the URL may not be used, and urllib3's errors
        (timeouts, refused connections, TLS failures) when the send itself fails.
        """
        target = _resolve(url, allow_private=allow_private)
        pool = self._pool(target)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if ":" not in target.host else f"[{target.host}]"
        if target.port != default_port:
            host_header = f"{host_header}:{target.port}"
        started = time.monotonic()
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            timeout=urllib3.Timeout(total=timeout),
            preload_content=False,
            assert_same_host=False,
        )
        try:
            first = response.read(RESPONSE_BODY_LIMIT, decode_content=True) or b""
            if not _drained(response):
                response.close()  # so the connection is not used again
        finally:
            response.release_conn()
        return Response(
            status=response.status,
            body=first[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace"),
            headers={key.lower(): value for key, value in response.headers.items()},
            duration=time.monotonic() - started,
        )

    def close(self) -> None:
        """Close every kept connection."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool = False,
    timeout: float = TOTAL_TIMEOUT,
) -> Response:
    """One send on a connection of its own (see :class:`Client` to keep connections)."""
    with Client(per_address=1, max_addresses=1) as client:
        return client.post(url, body, headers, allow_private=allow_private, timeout=timeout)
