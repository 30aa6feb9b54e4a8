"""Outbound HTTP to URLs that admins typed in: webhooks, Slack, Teams.

A URL saved as safe can point somewhere else by the time it is used (DNS rebinding), and a
redirect can send a request inside the network (SSRF). So every send resolves the host once,
refuses the whole send if *any* address it resolves to is not a public unicast address, and
connects to the checked address itself (the hostname still goes in ``Host`` and in TLS SNI
and certificate checks). Redirects are never followed. ``allow_private`` (for tests and
local development only) lifts the address rule and allows plain ``http``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

from .errors import DeliveryRefusedError

__all__ = ["Client", "Response", "check_url", "post"]

TOTAL_TIMEOUT = 15.0
RESPONSE_BODY_LIMIT = 1024

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


def _is_public(ip: _IP) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None or ip.scope_id:
            # ::ffff:a.b.c.d is an IPv4 address in disguise (refused outright, as filters
            # judging only v6 ranges miss it); a zone id names a local interface.
            return False
        # A v6 address that carries a v4 one (6to4, Teredo) is judged by the v4 one.
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return _is_public(embedded)
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            return _is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    # is_global is False for loopback, RFC 1918, link-local, CGNAT (100.64/10), ULA, ...
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Refuse a URL that can never be sent to (scheme, credentials, literal private IP)."""
    _parse(url, allow_private=allow_private)


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
    try:
        literal: _IP | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not allow_private and not _is_public(literal):
        raise DeliveryRefusedError(f"{host} is not a public address")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _resolve(url: str, *, allow_private: bool) -> _Target:
    scheme, host, port, path = _parse(url, allow_private=allow_private)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryRefusedError(f"{host} does not resolve ({exc.strerror})") from None
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not _is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise DeliveryRefusedError(f"{host} resolves to {address}, not a public address")
    return _Target(scheme, host, port, addresses[0], path)


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
