"""The embedded spool: a local folder of one-event files.

Every event is first written to its own file (write aside, then rename: a reader never
sees half a file), so a failure is kept even when the database is down or the process
dies a moment later. Several workers on one host may share the folder: each file is
claimed with ``flock`` before it is read, so no two drainers record the same file.
Events that can never be recorded go to its ``dead/`` folder.

A worker's spool has an ``owner``, the tag of its database (``spools.database_tag``): the
file names it writes end in ``-db<tag>.json`` and its drainer takes only those (and files
without a tag, written before tags existed). Workers recording to different databases can
share the folder: each one's failures wait for a drainer of its own database.

The contract it implements is ``event_spool.EventSpool`` (``stream_spool.StreamSpool``
is the other kind); ``drain_loop.Drainer`` records what it holds. Those names are
importable from here too, as before the split.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from notifier import FailureKind, FailureReport, metrics

from .contract import Claim, EventSpool, read_report

__all__ = ["FileClaim", "Spool"]

_counter = itertools.count()


@dataclass
class FileClaim(Claim):
    """A spooled file this process holds the ``flock`` of."""

    path: Path
    fd: int


class Spool(EventSpool[FileClaim]):
    """A directory of one-event JSON files, oldest first."""

    def __init__(self, directory: Path, owner: str | None = None) -> None:
        self.directory = Path(directory)
        #: The database tag this spool writes and drains; None takes every file (the CLI).
        self.owner = owner
        self._suffix = f"-db{owner}.json" if owner else ".json"
        self.dead = self.directory / "dead"
        self.location = str(self.directory)
        self.dead_location = str(self.dead)
        self._ensured = False

    def ensure(self) -> None:
        """Create the directory (and its dead-letter folder) if missing."""
        self.dead.mkdir(parents=True, exist_ok=True)
        self._ensured = True

    def put(self, event: FailureReport) -> Path:
        """Write ``event`` to a new file, visible to drainers only once complete."""
        try:
            path = self._put(event)
        except FileNotFoundError:  # the folder was removed under us: recreate, write again
            self._ensured = False
            path = self._put(event)
        metrics.inc("notifier_failures_captured_total", FailureKind(event.kind).value)
        return path

    def _put(self, event: FailureReport) -> Path:
        if not self._ensured:
            self.ensure()
        stamp = int(event.occurred_at.timestamp() * 1e9)
        name = f"{stamp:020d}-{os.getpid()}-{next(_counter):08d}{self._suffix}"
        folder = str(self.directory)
        tmp = f"{folder}/.{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, event.to_json().encode())
        finally:
            os.close(fd)
        path = f"{folder}/{name}"
        os.rename(tmp, path)
        return Path(path)

    def stats(self) -> tuple[int, int, float]:
        """Pending events, dead events, and the oldest pending event's age in seconds."""
        pending = self._pending_names()
        dead = self.dead_count()
        oldest = _age(pending[0], unknown=0.0) if pending else 0.0
        return len(pending), dead, oldest

    def burst(self) -> tuple[int, float, float]:
        """Pending events, the oldest's and the newest's age in seconds (one listing)."""
        pending = self._pending_names()
        if not pending:
            return 0, 0.0, 0.0
        inf = float("inf")  # a file without its time is not waited for
        return len(pending), _age(pending[0], unknown=inf), _age(pending[-1], unknown=inf)

    def pending(self) -> list[Path]:
        """Spooled files this spool's owner records, oldest first."""
        return [self.directory / name for name in self._pending_names()]

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
        """A report file written for this spool's database, or for no database in particular."""
        if not name.endswith(".json") or name.startswith("."):
            return False
        if self.owner is None:
            return True
        tag = name[:-5].rpartition("-")[2]
        return not tag.startswith("db") or tag == f"db{self.owner}"

    def claim(self, limit: int) -> list[FileClaim]:
        """Lock up to ``limit`` pending files that no other drainer holds."""
        claims: list[FileClaim] = []
        for name in self._pending_names():
            if len(claims) >= limit:
                break
            claim = self._claim_one(self.directory / name)
            if claim is not None:
                claims.append(claim)
        return claims

    def _claim_one(self, path: Path) -> FileClaim | None:
        try:
            fd = os.open(path, os.O_RDONLY)
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

    def done(self, claim: FileClaim) -> None:
        """The event is recorded: delete its file, then let go of the lock."""
        try:  # a file left behind (the folder moved away) is a replay the keys make harmless
            with suppress(FileNotFoundError):
                claim.path.unlink()
        finally:
            os.close(claim.fd)

    def release(self, claim: FileClaim) -> None:
        """Keep the file for a later attempt."""
        os.close(claim.fd)

    def bury(self, claim: FileClaim) -> None:
        """Move an event that can never be recorded to ``dead/``, for a human to look at."""
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


def _read_all(fd: int, size: int) -> bytes:
    """The whole file open at ``fd`` (``size`` as ``fstat`` said), in as few reads as can be."""
    chunks = []
    while chunk := os.read(fd, max(size, 4096) + 1):
        chunks.append(chunk)
    return b"".join(chunks)


def _age(name: str, *, unknown: float) -> float:
    """Seconds since the event of a spool file was made (its name starts with that time).

    ``unknown`` for a name without the time (a file put there by hand).
    """
    stamp = name.split("-", 1)[0]
    if not stamp.isdigit():
        return unknown
    return max(0.0, time.time() - int(stamp) / 1e9)
