"""The folder spool's segments: appended reports, drained by offset, deleted once sealed.

In process with real folders and real drainers (``Drainer`` with a recorder that keeps
what it is given); one writer is a real process killed in the middle of a write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from notifier.worker.spool import Drainer, Spool, segments

from notifier import FailureReport

from .conftest import numbered_report


class _Kept:
    """A batch recorder that keeps the keys it was given, batch by batch."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, reports: list[FailureReport]) -> list[bool]:
        with self._lock:
            self.keys += [r.key for r in reports]
        return [True] * len(reports)


def _keys(numbers: range | list[int]) -> list[str]:
    return sorted(f"celery:task-{n}:failure" for n in numbers)


def _files(folder: Path) -> list[str]:
    """Every file in the folder (hidden ones too), dead letters aside."""
    return sorted(p.name for p in folder.iterdir() if p.name != "dead")


def test_reports_are_appended_to_the_process_segment_and_each_recorded_once(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool", owner="test")
    for n in range(5):
        spool.put(numbered_report(n))
    [segment] = [name for name in _files(spool.directory) if not name.startswith(".")]
    assert segment.endswith("-dbtest.jsonl")
    assert spool.stats()[0] == 5
    kept = _Kept()
    drainer = Drainer(spool, kept)
    assert drainer.drain() == 5
    assert spool.stats()[0] == 0
    spool.put(numbered_report(5))  # the same segment: the drainer goes on from where it was
    assert spool.stats()[0] == 1
    assert drainer.drain() == 1
    assert sorted(kept.keys) == _keys(range(6))
    # Its writer still appends to it: the segment stays, recorded to its end.
    assert segment in _files(spool.directory)
    spool.close()  # sealed: the next drain deletes it with its offset file
    assert drainer.drain() == 0
    assert _files(spool.directory) == []
    assert sorted(kept.keys) == _keys(range(6))


def test_segments_rotate_and_sealed_ones_go_once_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "MAX_SEGMENT_BYTES", 1000)  # two or three reports each
    spool = Spool(tmp_path / "spool", owner="test")
    for n in range(12):
        spool.put(numbered_report(n))
    written = [name for name in _files(spool.directory) if name.endswith(".jsonl")]
    assert len(written) >= 4
    kept = _Kept()
    assert Drainer(spool, kept).drain() == 12
    assert sorted(kept.keys) == _keys(range(12))
    # Only the segment still being written is left (and how far it is recorded).
    [left] = [name for name in _files(spool.directory) if name.endswith(".jsonl")]
    assert left == written[-1]
    assert _files(spool.directory) == [f".{left}.offset", left]


def test_a_line_being_written_waits_and_is_recorded_once_complete(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", owner="test")
    spool.put(numbered_report(1))
    [segment] = [p for p in spool.directory.glob("*.jsonl")]
    line = f"{numbered_report(2).to_json()}\n".encode()
    with segment.open("ab") as half_written:  # as a reader may see a long write midway
        half_written.write(line[:40])
    assert spool.stats()[0] == 1  # counted once complete
    kept = _Kept()
    drainer = Drainer(spool, kept)
    assert drainer.drain() == 1
    assert spool.stats()[0] == 0 and spool.dead_count() == 0
    with segment.open("ab") as rest:
        rest.write(line[40:])
    assert spool.stats()[0] == 1
    assert drainer.drain() == 1
    assert sorted(kept.keys) == _keys([1, 2])


_KILLED_WRITER = """
import os, signal, sys
from notifier.worker.spool import Spool
from notifier import FailureKind, FailureReport, JobKind

spool = Spool(sys.argv[1], owner="test")
for n in (10, 11):
    spool.put(FailureReport(key=f"celery:task-{n}:failure", job=JobKind.IMPORT,
        kind=FailureKind.EXCEPTION, task_name="shop.import", task_id=f"task-{n}"))
mine = f"-{os.getpid()}-"
[segment] = [n for n in os.listdir(sys.argv[1]) if n.endswith(".jsonl") and mine in n]
with open(os.path.join(sys.argv[1], segment), "ab") as torn:  # killed mid-write
    torn.write(b'{"key": "celery:task-12:failure", "job": "imp')
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_mid_write_loses_only_that_report(tmp_path: Path) -> None:
    """Its segment is sealed by its death; the torn line is neither recorded nor buried."""
    folder = tmp_path / "spool"
    spool = Spool(folder, owner="test")
    spool.put(numbered_report(1))
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(folder)], check=False)
    assert killed.returncode == -9
    spool.put(numbered_report(2))
    assert spool.stats()[0] == 4  # two, then two of the killed writer
    kept = _Kept()
    drainer = Drainer(spool, kept)
    assert drainer.drain() == 4
    assert sorted(kept.keys) == _keys([1, 2, 10, 11])
    assert spool.dead_count() == 0 and spool.stats()[0] == 0
    # The killed writer's segment is gone; ours stays while we may append to it.
    assert len(list(folder.glob("*.jsonl"))) == 1
    spool.put(numbered_report(3))
    assert drainer.drain() == 1 and kept.keys[-1] == "celery:task-3:failure"


def test_an_unreadable_line_goes_to_the_dead_letters_alone(tmp_path: Path) -> None:
    """A segment left by a process gone: the lines around the bad one are recorded."""
    spool = Spool(tmp_path / "spool", owner="test")
    spool.ensure()
    lines = [numbered_report(1).to_json(), "not a report", numbered_report(2).to_json()]
    name = "00000000000000000001-1-00000000-dbtest.jsonl"
    (spool.directory / name).write_text("".join(f"{line}\n" for line in lines))
    kept = _Kept()
    assert Drainer(spool, kept).drain() == 3
    assert sorted(kept.keys) == _keys([1, 2])
    assert spool.dead_count() == 1
    assert _files(spool.directory) == []  # sealed and done
    [dead] = spool.dead_listing(5)
    assert dead.startswith("00000000000000000001-1-00000000-") and "-dbtest.json" in dead
    assert spool.retry_dead() == 1  # back as a file of its own, still not a report
    assert Drainer(spool, kept).drain() == 1
    assert spool.dead_count() == 1


def test_two_drainers_sharing_a_folder_record_each_report_once(tmp_path: Path) -> None:
    """Four writers (segments), files of the format before segments, two drainers."""
    folder = tmp_path / "spool"
    writers = [Spool(folder, owner="test") for _ in range(4)]
    writers[0].ensure()
    for n in range(20):  # from before an upgrade: one file per report
        name = f"{time.time_ns():020d}-1-{n:08d}-dbtest.json"
        (folder / name).write_text(numbered_report(1000 + n).to_json())
    kept = [_Kept(), _Kept()]
    drainers = [Drainer(Spool(folder, owner="test"), k) for k in kept]
    for drainer in drainers:
        drainer.BATCH = 7  # many small claims, so the two meet often
        drainer.QUIET_SECONDS = 0.0
    threads = [threading.Thread(target=d.run, daemon=True) for d in drainers]
    for thread in threads:
        thread.start()
    for n in range(400):
        writers[n % 4].put(numbered_report(n))
    deadline = time.monotonic() + 30
    while len(kept[0].keys) + len(kept[1].keys) < 420 and time.monotonic() < deadline:
        time.sleep(0.01)
    for writer in writers:
        writer.close()
    for drainer in drainers:
        drainer.request_stop()
    for thread in threads:
        thread.join(10)
    everything = kept[0].keys + kept[1].keys
    assert sorted(everything) == _keys([*range(400), *range(1000, 1020)])  # each once
    assert Drainer(Spool(folder, owner="test"), _Kept()).drain() == 0
    assert _files(folder) == []


def test_a_drainer_takes_only_its_own_database_segments(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    Spool(folder, owner="a").put(numbered_report(1))
    Spool(folder, owner="b").put(numbered_report(2))
    kept = _Kept()
    assert Drainer(Spool(folder, owner="b"), kept).drain() == 1
    assert kept.keys == ["celery:task-2:failure"]
    assert Spool(folder).stats()[0] == 1  # `notifier spool status` sees every database's
    assert Spool(folder, owner="a").stats()[0] == 1


def test_a_forked_child_writes_a_segment_of_its_own(tmp_path: Path) -> None:
    """And the parent's segment is sealed once the parent lets go of it."""
    spool = Spool(tmp_path / "spool", owner="test")
    spool.put(numbered_report(1))
    pid = os.fork()
    if pid == 0:  # the child: a pool process
        try:
            spool.put(numbered_report(2))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert len(list(spool.directory.glob("*.jsonl"))) == 2
    kept = _Kept()
    drainer = Drainer(spool, kept)
    assert drainer.drain() == 2
    spool.close()
    assert drainer.drain() == 0
    assert sorted(kept.keys) == _keys([1, 2])
    assert _files(spool.directory) == []
