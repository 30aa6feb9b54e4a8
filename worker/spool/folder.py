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
        pending = self.pending()
        dead = self.dead_count()
        oldest = 0.0
        if pending:  # names start with the event's time in nanoseconds
            stamp = pending[0].name.split("-", 1)[0]
            if stamp.isdigit():
                oldest = max(0.0, time.time() - int(stamp) / 1e9)
        return len(pending), dead, oldest

    def pending(self) -> list[Path]:
        """Spooled files this spool's owner records, oldest first."""
        try:
            return self._files(self.directory)
        except FileNotFoundError:  # NotADirectoryError passes: a file there makes it unusable
            return []

    def _files(self, folder: Path) -> list[Path]:
        return [folder / n for n in sorted(os.listdir(folder)) if self._mine(n)]

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
        for path in self.pending():
            if len(claims) >= limit:
                break
            claim = self._claim_one(path)
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
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
            with os.fdopen(os.dup(fd), encoding="utf-8") as handle:
                text = handle.read()
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        try:
            event: FailureReport | None = read_report(text)
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
