"""The folder spool's segments: each writing process appends its reports, one line each.

A report costs its pool child one ``os.write`` on an ``O_APPEND`` descriptor opened once
per segment, and no directory operation: a file per report cost a create, a rename and
the drainer's unlink in a folder on the database's own disk (BENCHMARKS.md, Worker).
What ``write`` returned is in the file: a crash of the process loses nothing after it.

A segment (``<ns>-<pid>-<n>[-db<tag>].jsonl``) has one writer. The writer holds a shared
``flock`` on it while it may still append, taken before the segment gets its name (so a
drainer never sees a live segment unlocked), and lets go when it rotates away from it
(:data:`MAX_SEGMENT_BYTES`, :data:`MAX_SEGMENT_SECONDS`) or its process ends: a drainer
that can lock the segment exclusively knows it is *sealed*, nothing more will come.

How far a segment is recorded lives beside it, in ``.<segment>.offset``. A drainer claims
a segment by locking that file (so no two drainers record the same report), reads the
lines after the offset, and writes the new offset once they are settled; a sealed segment
recorded to its end is deleted with its offset file. A line without its newline is a
write still going on, or, once the segment is sealed, what a writer killed in the middle
of its write left: it is skipped then (its ``write`` never returned), and never holds up a
later report, as a writer never appends after a write that came up short.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import logging
import os
import threading
import time
import weakref
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from notifier import FailureReport

from .contract import Claim, read_report

__all__ = [
    "MAX_SEGMENT_BYTES",
    "MAX_SEGMENT_SECONDS",
    "SEGMENT_SUFFIX",
    "Counted",
    "LineClaim",
    "SegmentWriter",
    "claim_segment",
    "pending_in",
    "remove_orphans",
]

logger = logging.getLogger("notifier.worker")

SEGMENT_SUFFIX = ".jsonl"
#: A writer starts a new segment once its segment holds this much (a few hundred reports)
MAX_SEGMENT_BYTES = 1 << 20
#: or is this old, so that a recorded segment is deleted before long.
MAX_SEGMENT_SECONDS = 300.0
#: An offset or temporary file this old without its segment was left by a crash.
_ORPHAN_SECONDS = 60.0
_OPEN_FLAGS = os.O_CLOEXEC

_counter = itertools.count()
_writers: weakref.WeakSet[SegmentWriter] = weakref.WeakSet()


def offset_name(segment: str) -> str:
    """The name of the file holding how far ``segment`` is recorded."""
    return f".{segment}.offset"


class SegmentWriter:
    """The segment this process appends one folder's reports to."""

    def __init__(self, folder: str, tag: str) -> None:
        self.folder = folder
        self._tag = tag  # "-db<tag>" or ""
        self._fd = -1
        self._path = ""
        self._id = (0, 0)
        self._size = 0
        self._opened = 0.0
        self._pid = 0
        self._lock = threading.Lock()
        _writers.add(self)

    def append(self, line: bytes) -> str:
        """Append ``line`` (newline-terminated) in one write; returns the segment's path."""
        with self._lock:
            if not self._current():
                self._rotate()
            written = os.write(self._fd, line)
            if written != len(line):  # a full disk: never append after a partial line
                path = self._path
                self._close()
                raise OSError(errno.ENOSPC, f"{path}: wrote {written} of {len(line)} bytes")
            self._size += written
            return self._path

    def close(self) -> None:
        """Let go of the segment: it is sealed (the next append starts another)."""
        with self._lock:
            self._close()

    def _current(self) -> bool:
        """Whether the open segment takes this line (and is still in the folder)."""
        if self._fd < 0 or self._pid != os.getpid():
            return False
        if self._size >= MAX_SEGMENT_BYTES or time.monotonic() - self._opened > MAX_SEGMENT_SECONDS:
            return False
        try:  # the folder removed or replaced: write where a drainer looks, or fail
            status = os.stat(self._path)
        except OSError:
            return False
        return (status.st_dev, status.st_ino) == self._id

    def _rotate(self) -> None:
        self._close()
        name = (
            f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):08d}{self._tag}{SEGMENT_SUFFIX}"
        )
        tmp = f"{self.folder}/.{name}.tmp"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS
        fd = os.open(tmp, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # nobody else knows the file yet
            path = f"{self.folder}/{name}"
            os.rename(tmp, path)
            status = os.fstat(fd)
        except BaseException:
            os.close(fd)
            with suppress(OSError):
                os.unlink(tmp)
            raise
        self._fd, self._path, self._id = fd, path, (status.st_dev, status.st_ino)
        self._size, self._opened, self._pid = 0, time.monotonic(), os.getpid()

    def _close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with suppress(OSError):
                os.close(fd)

    def _forked(self) -> None:
        # The parent's descriptor shares its lock: closed here, the parent's segment is
        # sealed when the parent lets go of it, not when the last child exits.
        self._lock = threading.Lock()
        self._close()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(eq=False)
class _Held:
    """A segment this process claimed: its offset file's lock and its claimed lines."""

    path: str
    offset_path: str
    offset_fd: int
    segment_fd: int
    committed: int
    size: int
    sealed: bool
    ends: list[int] = field(default_factory=list)
    #: The claimed lines reach the last complete line, and after it comes a partial one
    #: that nothing will complete (the segment is sealed).
    partial_tail: bool = False
    settled: dict[int, bool] = field(default_factory=dict)

    def settle(self, index: int, consumed: bool) -> None:
        """Line ``index`` is recorded or buried (consumed) or kept; the last one finishes."""
        self.settled[index] = consumed
        if len(self.settled) == len(self.ends):
            self.finish()

    def finish(self) -> None:
        """Write how far the segment is recorded, delete it if sealed and done, let go."""
        try:
            offset = self.committed
            for index, end in enumerate(self.ends):
                if not self.settled.get(index):
                    break  # a kept line: what follows it is recorded again later (by key)
                offset = end
            if self.partial_tail and offset == (self.ends[-1] if self.ends else self.committed):
                logger.warning(
                    "notifier: %s ends with %d bytes of a report whose write never finished "
                    "(its process was killed while writing it); skipped",
                    self.path,
                    self.size - offset,
                )
                offset = self.size
            if offset > self.committed:
                os.pwrite(self.offset_fd, f"{offset:020d}\n".encode(), 0)
            if self.sealed and offset >= self.size:
                with suppress(FileNotFoundError):
                    os.unlink(self.path)
                with suppress(FileNotFoundError):
                    os.unlink(self.offset_path)
        finally:
            os.close(self.segment_fd)
            os.close(self.offset_fd)


@dataclass(eq=False)
class LineClaim(Claim):
    """One report line of a segment whose offset file this process holds the lock of."""

    held: _Held
    index: int
    start: int
    line: bytes

    @property
    def name(self) -> str:
        """The segment's file name."""
        return os.path.basename(self.held.path)


def _read_offset(fd: int) -> int:
    text = os.pread(fd, 64, 0)
    try:
        return int(text)
    except ValueError:  # a new offset file (empty)
        return 0


def _read_from(fd: int, start: int, size: int) -> bytes:
    chunks = []
    while start < size and (chunk := os.pread(fd, size - start, start)):
        chunks.append(chunk)
        start += len(chunk)
    return b"".join(chunks)


def _report(line: bytes) -> FailureReport | None:
    try:  # bytes that are not UTF-8 are as unreadable as text that is not a report
        return read_report(line.decode("utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def claim_segment(folder: str, name: str, room: int) -> list[LineClaim]:
    """Up to ``room`` unrecorded lines of segment ``name``, unless another drainer holds it.

    A sealed segment with nothing left to record is deleted here.
    """
    path = f"{folder}/{name}"
    offset_path = f"{folder}/{offset_name(name)}"
    try:
        offset_fd = os.open(offset_path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
    except FileNotFoundError:  # the folder went away
        return []
    try:
        fcntl.flock(offset_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A drainer may have finished the segment and deleted both between our open and lock.
        if os.fstat(offset_fd).st_ino != os.stat(offset_path).st_ino:
            raise FileNotFoundError(offset_path)
    except (BlockingIOError, FileNotFoundError):
        os.close(offset_fd)
        return []
    try:
        segment_fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:  # finished and deleted meanwhile: so is the file we made
        with suppress(FileNotFoundError):
            os.unlink(offset_path)
        os.close(offset_fd)
        return []
    try:
        try:
            fcntl.flock(segment_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            sealed = True
        except BlockingIOError:  # its writer may still append
            sealed = False
        size = os.fstat(segment_fd).st_size
        committed = _read_offset(offset_fd)
        data = _read_from(segment_fd, committed, size)
    except BaseException:
        os.close(segment_fd)
        os.close(offset_fd)
        raise
    held = _Held(path, offset_path, offset_fd, segment_fd, committed, size, sealed)
    complete = data.rfind(b"\n") + 1
    claims: list[LineClaim] = []
    position = 0
    while position < complete and len(claims) < room:
        end = data.index(b"\n", position) + 1
        line = data[position : end - 1]
        claims.append(LineClaim(_report(line), held, len(claims), committed + position, line))
        held.ends.append(committed + end)
        position = end
    held.partial_tail = sealed and position == complete and complete < len(data)
    if not claims:
        held.finish()
    return claims


@dataclass
class Counted:
    """What :func:`pending_in` last counted of a segment: read again only what came after."""

    committed: int
    end: int  # the end of the last complete line counted
    lines: int
    first: float  # when the first unrecorded line was written (nan: none, or not known)


def pending_in(
    folder: str, name: str, counted: dict[str, Counted] | None = None
) -> tuple[int, float, float]:
    """Unrecorded lines of segment ``name``, and when the first and the last were written.

    Read without claiming: a count for status and for the drainer's wait for a burst.
    Times are seconds since the epoch (the first line's ``occurred_at``, the file's
    modification time), ``nan`` when unknown. With ``counted`` (kept by the caller from
    one count to the next), only the lines appended since are read: after a long outage
    a folder may hold many full segments, which a drainer counts every second.
    """
    nan = float("nan")
    try:
        fd = os.open(f"{folder}/{offset_name(name)}", os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        committed = 0
    else:
        try:
            committed = _read_offset(fd)
        finally:
            os.close(fd)
    try:
        fd = os.open(f"{folder}/{name}", os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        return 0, nan, nan
    known = counted.get(name) if counted is not None else None
    if known is None or known.committed != committed:
        known = Counted(committed, committed, 0, nan)
    try:
        status = os.fstat(fd)
        data = _read_from(fd, known.end, status.st_size)
    finally:
        os.close(fd)
    complete = data.rfind(b"\n") + 1
    if complete:
        first = known.first
        if not known.lines:
            first = _written_at(data[: data.index(b"\n")])
        known = Counted(committed, known.end + complete, known.lines + data.count(b"\n"), first)
    if counted is not None:
        counted[name] = known
    if not known.lines:
        return 0, nan, nan
    return known.lines, known.first, status.st_mtime_ns / 1e9


def _written_at(line: bytes) -> float:
    try:
        return datetime.fromisoformat(json.loads(line)["occurred_at"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return float("nan")


def remove_orphans(folder: str, names: list[str]) -> None:
    """Delete offset and temporary files of segments gone for a while (left by a crash)."""
    present = set(names)
    now = time.time()
    for name in names:
        if not name.startswith("."):
            continue
        for suffix in (".offset", ".tmp"):
            segment = name[1 : -len(suffix)]
            if name.endswith(suffix) and segment.endswith(SEGMENT_SUFFIX):
                if segment in present:
                    break
                with suppress(FileNotFoundError):
                    if now - os.stat(f"{folder}/{name}").st_mtime > _ORPHAN_SECONDS:
                        os.unlink(f"{folder}/{name}")
                break
