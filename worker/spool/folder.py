"""The embedded spool: a local folder of report segments (and of one-event files).

Each process appends its reports to a segment of its own, one line each (``segments``):
one write per failure, no directory operation, kept even when the database is down or
the process dies a moment later. Several workers on one host may share the folder: a
drainer claims a segment with ``flock`` before it reads it, so no two drainers record the
same report. Reports that can never be recorded go to its ``dead/`` folder, one file each.

Folders written before segments held one file per event (write aside, then rename); those
files, and the dead ones moved back by ``notifier spool retry``, are read and claimed as
they always were (a ``flock`` on each file).

A worker's spool has an ``owner``, the tag of its database (``spools.database_tag``): the
names it writes end in ``-db<tag>`` and its drainer takes only those (and names without a
tag, written before tags existed). Workers recording to different databases can share the
folder: each one's failures wait for a drainer of its own database.

The contract it implements is ``event_spool.EventSpool`` (``stream_spool.StreamSpool``
is the other kind); ``drain_loop.Drainer`` records what it holds. Those names are
importable from here too, as before the split.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from notifier import FailureKind, FailureReport, metrics

from .contract import Claim, EventSpool, read_report
from .segments import (
    SEGMENT_SUFFIX,
    Counted,
    LineClaim,
    SegmentWriter,
    claim_segment,
    pending_in,
    remove_orphans,
)

__all__ = ["FileClaim", "LineClaim", "Spool"]


@dataclass
class FileClaim(Claim):
    """A spooled file this process holds the ``flock`` of."""

    path: Path
    fd: int


class Spool(EventSpool[FileClaim | LineClaim]):
    """A directory of report segments (and one-event JSON files), oldest first."""

    def __init__(self, directory: Path, owner: str | None = None) -> None:
        self.directory = Path(directory)
        #: The database tag this spool writes and drains; None takes every file (the CLI).
        self.owner = owner
        self._writer = SegmentWriter(str(self.directory), f"-db{owner}" if owner else "")
        self.dead = self.directory / "dead"
        self.location = str(self.directory)
        self.dead_location = str(self.dead)
        self._ensured = False
        self._counted: dict[str, Counted] = {}  # segments counted before, by name

    def ensure(self) -> None:
        """Create the directory (and its dead-letter folder) if missing."""
        self.dead.mkdir(parents=True, exist_ok=True)
        self._ensured = True

    def put(self, event: FailureReport) -> str:
        """Append ``event`` to this process's segment; returns the segment's path."""
        line = f"{event.to_json()}\n".encode()
        if not self._ensured:
            self.ensure()
        try:
            path = self._writer.append(line)
        except FileNotFoundError:  # the folder was removed under us: recreate, write again
            self.ensure()
            path = self._writer.append(line)
        metrics.inc("notifier_failures_captured_total", FailureKind(event.kind).value)
        return path

    def close(self) -> None:
        """Let go of this process's segment (sealed: a drainer deletes it once recorded)."""
        self._writer.close()

    def stats(self) -> tuple[int, int, float]:
        """Pending events, dead events, and the oldest pending event's age in seconds."""
        pending = self._pending()
        oldest = max(0.0, time.time() - pending.first) if pending.timed else 0.0
        return pending.count, self.dead_count(), oldest

    def burst(self) -> tuple[int, float, float]:
        """Pending events, the oldest's and the newest's age in seconds (one listing)."""
        pending = self._pending()
        if not pending.count:
            return 0, 0.0, 0.0
        if pending.timed < pending.count:  # an event without its time is not waited for
            return pending.count, float("inf"), float("inf")
        now = time.time()
        return pending.count, max(0.0, now - pending.first), max(0.0, now - pending.last)

    def _pending(self) -> _Pending:
        pending = _Pending()
        folder = str(self.directory)
        names = self._pending_names()
        listed = set(names)
        counted = {n: c for n, c in self._counted.items() if n in listed}
        for name in names:
            if name.endswith(SEGMENT_SUFFIX):
                lines, first, last = pending_in(folder, name, counted)
                if lines:
                    pending.add(lines, first, last)
            else:
                stamp = _stamp(name)
                pending.add(1, stamp, stamp)
        self._counted = counted
        return pending

    def _pending_names(self) -> list[str]:
        try:
            return self._names(self.directory)
        except FileNotFoundError:  # NotADirectoryError passes: a file there makes it unusable
            return []

    def _names(self, folder: Path) -> list[str]:
        # Names only: a Path per file costs more than the listing, and a drainer that
        # lags lists hundreds of files to claim one batch of them.
        return sorted(n for n in os.listdir(folder) if self._mine(n))

    def _files(self, folder: Path) -> list[Path]:
        return [folder / name for name in self._names(folder)]

    def _mine(self, name: str) -> bool:
        """A segment or report file written for this spool's database, or for no database."""
        if name.startswith("."):
            return False
        if name.endswith(SEGMENT_SUFFIX):
            stem = name[: -len(SEGMENT_SUFFIX)]
        elif name.endswith(".json"):
            stem = name[:-5]
        else:
            return False
        if self.owner is None:
            return True
        tag = stem.rpartition("-")[2]
        return not tag.startswith("db") or tag == f"db{self.owner}"

    def claim(self, limit: int) -> list[FileClaim | LineClaim]:
        """Lock up to ``limit`` pending events that no other drainer holds, oldest first."""
        folder = str(self.directory)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        remove_orphans(folder, names)
        claims: list[FileClaim | LineClaim] = []
        try:
            for name in sorted(n for n in names if self._mine(n)):
                room = limit - len(claims)
                if room <= 0:
                    break
                if name.endswith(SEGMENT_SUFFIX):
                    claims += claim_segment(folder, name, room)
                elif (one := self._claim_one(self.directory / name)) is not None:
                    claims.append(one)
        except BaseException:
            for claim in claims:
                with suppress(Exception):
                    self.release(claim)
            raise
        return claims

    def _claim_one(self, path: Path) -> FileClaim | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Another drainer may have recorded and unlinked it between listing and locking.
            status = os.fstat(fd)
            if status.st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
            data = _read_all(fd, status.st_size)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        try:  # bytes that are not UTF-8 are as unreadable as text that is not a report
            event: FailureReport | None = read_report(data.decode("utf-8"))
        except (ValueError, KeyError, TypeError, AttributeError):
            event = None
        return FileClaim(event, path, fd)

    def done(self, claim: FileClaim | LineClaim) -> None:
        """The event is recorded: forget it (delete its file), then let go of the lock."""
        if isinstance(claim, LineClaim):
            claim.held.settle(claim.index, consumed=True)
            return
        try:  # a file left behind (the folder moved away) is a replay the keys make harmless
            with suppress(FileNotFoundError):
                claim.path.unlink()
        finally:
            os.close(claim.fd)

    def release(self, claim: FileClaim | LineClaim) -> None:
        """Keep the event for a later attempt."""
        if isinstance(claim, LineClaim):
            claim.held.settle(claim.index, consumed=False)
            return
        os.close(claim.fd)

    def bury(self, claim: FileClaim | LineClaim) -> None:
        """Move an event that can never be recorded to ``dead/``, for a human to look at.

        A segment's line becomes a file of its own there, as events were before segments.
        """
        if isinstance(claim, LineClaim):
            consumed = False
            try:
                self.ensure()
                _write_file(self.dead, _dead_name(claim.name, claim.start), claim.line)
                consumed = True
            finally:
                claim.held.settle(claim.index, consumed=consumed)
            return
        try:
            self.ensure()
            with suppress(FileNotFoundError):
                os.replace(claim.path, self.dead / claim.path.name)
        finally:
            os.close(claim.fd)

    def dead_count(self) -> int:
        """How many events wait in the dead-letter folder."""
        return len(self._dead_files())

    def _dead_files(self) -> list[Path]:
        try:
            return self._files(self.dead)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def dead_listing(self, limit: int) -> list[str]:
        """The first ``limit`` dead files, each with when it was moved there."""
        lines = []
        for path in self._dead_files()[:limit]:
            with suppress(FileNotFoundError):
                moved = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
                lines.append(f"{path.name}  (moved {moved:%Y-%m-%d %H:%M:%S} UTC)")
        return lines

    def retry_dead(self) -> int:
        """Move every dead file back into the folder."""
        dead = self._dead_files()
        for path in dead:
            os.replace(path, self.directory / path.name)
        return len(dead)


@dataclass
class _Pending:
    """Events waiting in the folder, and when the first and the last of them were made."""

    count: int = 0
    timed: int = 0  # how many of them have a known time
    first: float = float("inf")
    last: float = float("-inf")

    def add(self, count: int, first: float | None, last: float | None) -> None:
        """``count`` events made from ``first`` to ``last`` (None or nan: not known)."""
        self.count += count
        if first is None or last is None or first != first or last != last:  # nan
            return
        self.timed += count
        self.first, self.last = min(self.first, first), max(self.last, last)


def _dead_name(segment: str, start: int) -> str:
    """The dead file of the line at ``start`` of ``segment``: its time, then its database."""
    stem = segment[: -len(SEGMENT_SUFFIX)]
    head, _, tag = stem.rpartition("-")
    if head and tag.startswith("db"):
        return f"{head}-{start:012d}-{tag}.json"
    return f"{stem}-{start:012d}.json"


def _write_file(folder: Path, name: str, data: bytes) -> None:
    """Write ``data`` aside, then rename it to ``name`` (a reader never sees half of it)."""
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, folder / name)


def _read_all(fd: int, size: int) -> bytes:
    """The whole file open at ``fd`` (``size`` as ``fstat`` said), in as few reads as can be."""
    chunks = []
    while chunk := os.read(fd, max(size, 4096) + 1):
        chunks.append(chunk)
    return b"".join(chunks)


def _stamp(name: str) -> float | None:
    """When the event of a spool file (or a segment) was made: its name starts with it.

    None for a name without the time (a file put there by hand).
    """
    stamp = name.split("-", 1)[0]
    return int(stamp) / 1e9 if stamp.isdigit() else None
