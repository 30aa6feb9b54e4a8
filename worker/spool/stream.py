"""A spool that outlives the host: events in a Redis stream, drained by a consumer group.

Each event is one stream entry (``XADD``). Every drainer is a consumer of one group:
``XREADGROUP`` hands it new entries, and it acknowledges and deletes each one
(``XACK`` + ``XDEL``) only after the transaction that recorded it committed. An entry a
drainer took but never acknowledged (its worker was killed, its pod replaced) stays
pending in the group; once it has been idle for ``claim_idle`` seconds, any other
drainer takes it over with ``XAUTOCLAIM``. A report recorded twice that way (the dead
drainer had committed but not acknowledged) changes nothing: its key is in the processed
keys. Dead letters go to a second stream, ``<stream>:dead``.

A worker's spool has an ``owner``, the tag of its database: its entries carry it, and its
drainers form the group ``notifier-drainers:<tag>``. Every group reads every entry; a
drainer acknowledges another database's entry in its own group and leaves it in the
stream, for that database's group to record and delete.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from notifier import FailureKind, FailureReport, metrics

from .contract import Claim, EventSpool, SpoolUnavailable, read_report

DEFAULT_STREAM = "notifier:spool"
DEFAULT_CLAIM_IDLE = 60.0  # seconds: far above a batch's commit, far below a pod's restart
GROUP = "notifier-drainers"
_FIELD = b"report"
_OWNER = b"db"
_TIMEOUT = 5.0  # seconds for a connect or a reply: an unreachable Redis fails fast


@dataclass
class StreamClaim(Claim):
    """A stream entry this consumer holds pending until it is acknowledged."""

    entry_id: bytes
    text: bytes


def shown_url(url: str) -> str:
    """``url`` without its password, for log lines and alerts."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


class StreamSpool(EventSpool[StreamClaim]):
    """Events in the Redis stream ``stream`` at ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        stream: str = DEFAULT_STREAM,
        claim_idle: float = DEFAULT_CLAIM_IDLE,
        owner: str | None = None,
    ) -> None:
        self.url = url
        self.stream = stream
        #: The database tag this spool writes and drains; None: the untagged group.
        self.owner = owner
        self.group = f"{GROUP}:{owner}" if owner else GROUP
        self.dead_stream = f"{stream}:dead"
        self.claim_idle = float(claim_idle)
        self.location = f"Redis stream {stream} at {shown_url(url)}"
        self.dead_location = f"Redis stream {self.dead_stream} at {shown_url(url)}"
        # Typed Any: redis-py's hints describe both reply modes (bytes and str) at once, and
        # this client always answers bytes.
        self._client: Any = None
        self._pid = 0
        self._consumer = ""
        self._ensured = False

    @property
    def client(self) -> Any:
        """The connection pool, made on first use and again in a forked child."""
        if self._client is None or self._pid != os.getpid():
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=_TIMEOUT,
                socket_connect_timeout=_TIMEOUT,
                socket_keepalive=True,
                health_check_interval=30,
            )
            self._pid = os.getpid()
            # One consumer per process: a restarted drainer is a new consumer, and the old
            # one's pending entries are taken over once idle.
            self._consumer = f"{socket.gethostname()}-{self._pid}-{uuid.uuid4().hex[:8]}"
        return self._client

    @property
    def consumer(self) -> str:
        """This process's consumer name in the group."""
        _ = self.client
        return self._consumer

    def ensure(self) -> None:
        """Create the stream and the drainers' group (from its first entry) if missing."""
        with _unavailable(self.location):
            try:
                self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ensured = True

    def put(self, event: FailureReport) -> bytes:
        """Append ``event`` to the stream; returns its entry id."""
        with _unavailable(self.location):
            fields = {_FIELD: event.to_json().encode()}
            if self.owner:
                fields[_OWNER] = self.owner.encode()
            entry: bytes = self.client.xadd(self.stream, fields)
        metrics.inc("notifier_failures_captured_total", FailureKind(event.kind).value)
        return entry

    def claim(self, limit: int) -> list[StreamClaim]:
        """Up to ``limit`` entries to record: pending, orphaned, then new ones.

        This consumer's unacknowledged ones, entries idle too long
        in a consumer that is gone, then new ones.
        """
        if not self._ensured:
            self.ensure()
        try:
            return self._claim(limit)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise SpoolUnavailable(f"{self.location}: {exc}") from exc
            self._ensured = False  # the stream was deleted (FLUSHDB): make it again
            return []
        except RedisError as exc:
            raise SpoolUnavailable(f"{self.location}: {type(exc).__name__}: {exc}") from exc

    def _claim(self, limit: int) -> list[StreamClaim]:
        client, consumer = self.client, self.consumer
        claims: list[StreamClaim] = []
        mine = client.xreadgroup(self.group, consumer, {self.stream: "0"}, count=limit)
        claims += self._claims(mine[0][1] if mine else [])
        if len(claims) < limit:
            taken = client.xautoclaim(
                self.stream,
                self.group,
                consumer,
                min_idle_time=int(self.claim_idle * 1000),
                start_id="0-0",
                count=limit - len(claims),
            )
            claims += self._claims(taken[1])
        while len(claims) < limit:  # again while other databases' entries filled the read
            room = limit - len(claims)
            new = client.xreadgroup(self.group, consumer, {self.stream: ">"}, count=room)
            entries = new[0][1] if new else []
            claims += self._claims(entries)
            if len(entries) < room:
                break
        return claims

    def _claims(self, entries: list[Any]) -> list[StreamClaim]:
        claims = []
        gone = []
        for entry_id, fields in entries:
            if not fields:  # deleted while pending (another drainer recorded it): let it go
                gone.append(entry_id)
                continue
            if not self._mine(fields.get(_OWNER)):  # its own database's group records it
                gone.append(entry_id)
                continue
            text = fields.get(_FIELD, b"")
            try:
                event: FailureReport | None = read_report(text.decode())
            except (ValueError, KeyError, TypeError, AttributeError):
                event = None
            claims.append(StreamClaim(event, entry_id, text))
        if gone:
            self.client.xack(self.stream, self.group, *gone)
        return claims

    def _mine(self, owner: bytes | None) -> bool:
        """An entry of this spool's database, or of none in particular (written untagged)."""
        return owner is None or self.owner is None or owner == self.owner.encode()

    def done(self, claim: StreamClaim) -> None:
        """Acknowledge the entry and delete it from the stream."""
        self.done_all([claim])

    def done_all(self, claims: list[StreamClaim]) -> None:
        """Acknowledge and delete a recorded batch in one round trip."""
        if not claims:
            return
        ids = [claim.entry_id for claim in claims]
        with _unavailable(self.location):
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.stream, self.group, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()

    def release(self, claim: StreamClaim) -> None:
        """Leave the entry pending with this consumer: its next drain reads it again."""

    def bury(self, claim: StreamClaim) -> None:
        """Move the entry to the dead-letter stream (in one transaction)."""
        with _unavailable(self.location):
            pipe = self.client.pipeline(transaction=True)
            dead = {_FIELD: claim.text, b"entry": claim.entry_id, b"buried_at": str(time.time())}
            if self.owner:
                dead[_OWNER] = self.owner.encode()
            pipe.xadd(self.dead_stream, dead)
            pipe.xack(self.stream, self.group, claim.entry_id)
            pipe.xdel(self.stream, claim.entry_id)
            pipe.execute()

    def stats(self) -> tuple[int, int, float]:
        """Entries waiting (taken or not), dead entries, and the oldest waiting one's age."""
        with _unavailable(self.location):
            pipe = self.client.pipeline(transaction=False)
            pipe.xlen(self.stream)
            pipe.xlen(self.dead_stream)
            pipe.xrange(self.stream, "-", "+", count=1)
            pending, dead, first = pipe.execute()
        oldest = 0.0
        if first:  # an entry id starts with the milliseconds of its XADD
            millis = int(first[0][0].split(b"-", 1)[0])
            oldest = max(0.0, time.time() - millis / 1000)
        return int(pending), int(dead), oldest

    def dead_count(self) -> int:
        """Entries in the dead-letter stream."""
        with _unavailable(self.location):
            return int(self.client.xlen(self.dead_stream))

    def dead_listing(self, limit: int) -> list[str]:
        """The first ``limit`` dead entries, each with when it was moved there."""
        with _unavailable(self.location):
            entries = self.client.xrange(self.dead_stream, "-", "+", count=limit)
        lines = []
        for entry_id, fields in entries:
            buried = float(fields.get(b"buried_at", b"0") or 0)
            when = datetime.fromtimestamp(buried, tz=UTC)
            lines.append(f"{entry_id.decode()}  (moved {when:%Y-%m-%d %H:%M:%S} UTC)")
        return lines

    def retry_dead(self) -> int:
        """Append every dead entry to the stream again, removing it from the dead letters."""
        moved = 0
        with _unavailable(self.location):
            while entries := self.client.xrange(self.dead_stream, "-", "+", count=500):
                pipe = self.client.pipeline(transaction=True)
                for entry_id, fields in entries:
                    kept = {_FIELD: fields.get(_FIELD, b"")}
                    if _OWNER in fields:  # back to its own database's drainers
                        kept[_OWNER] = fields[_OWNER]
                    pipe.xadd(self.stream, kept)
                    pipe.xdel(self.dead_stream, entry_id)
                pipe.execute()
                moved += len(entries)
        return moved

    def close(self) -> None:
        """Close this process's connections."""
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None


@contextmanager
def _unavailable(location: str) -> Iterator[None]:
    """Redis errors as SpoolUnavailable: the caller falls back, the drainer backs off."""
    try:
        yield
    except RedisError as exc:
        raise SpoolUnavailable(f"{location}: {type(exc).__name__}: {exc}") from exc
