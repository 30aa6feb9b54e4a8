"""The drain loop's batching: a burst of failures is one transaction, a lone one is not held.

In process, with a real folder spool and a recorder that keeps what it is given: each
batch it gets is one transaction of the real recorder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from notifier.worker.spool import Drainer, Spool

from notifier import FailureReport

from .conftest import numbered_report


class _Batches:
    """A batch recorder that keeps each batch's keys and when it was given them.

    Each batch takes 20 ms, as a transaction does: events keep arriving meanwhile.
    """

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[str]]] = []

    def __call__(self, reports: list[FailureReport]) -> list[bool]:
        self.batches.append((time.monotonic(), [r.key for r in reports]))
        time.sleep(0.02)
        return [True] * len(reports)

    @property
    def keys(self) -> list[str]:
        return [key for _, keys in self.batches for key in keys]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Spool, Drainer, _Batches]]:
    spool = Spool(tmp_path / "spool", owner="test")
    recorded = _Batches()
    drainer = Drainer(spool, recorded)
    thread = threading.Thread(target=drainer.run, daemon=True)
    thread.start()
    yield spool, drainer, recorded
    drainer.request_stop()
    thread.join(10)


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_burst_of_failures_is_recorded_in_one_transaction_once_it_pauses(
    running: tuple[Spool, Drainer, _Batches],
) -> None:
    """60 failures 5 ms apart (300 ms: three polls of the drain loop) in one batch, each once.

    Give or take one: a drain that is running when the burst begins takes its first event.
    """
    spool, drainer, recorded = running
    drainer.QUIET_SECONDS = 0.06  # a loaded test machine may stall the writer for a while
    drainer.LINGER_SECONDS = 5.0
    for n in range(60):
        spool.put(numbered_report(n))
        time.sleep(0.005)
    _wait(lambda: len(recorded.keys) == 60 and not spool.stats()[0])
    assert sorted(recorded.keys) == sorted(f"celery:task-{n}:failure" for n in range(60))
    assert len(recorded.batches) <= 2 + 1, [len(keys) for _, keys in recorded.batches]
    assert not spool.stats()[0]


def test_a_burst_that_goes_on_is_recorded_while_it_goes_on(
    running: tuple[Spool, Drainer, _Batches],
) -> None:
    """A failure never waits much longer than LINGER_SECONDS for the burst to end."""
    spool, drainer, recorded = running
    drainer.LINGER_SECONDS = 0.2
    start = time.monotonic()
    for n in range(150):  # 750 ms of failures 5 ms apart
        spool.put(numbered_report(n))
        time.sleep(0.005)
    _wait(lambda: len(recorded.keys) == 150)
    first = recorded.batches[0][0] - start
    assert first < 0.6, f"the first batch was recorded {first:.2f} s after the burst began"
    # One batch per LINGER_SECONDS or so, not one per transaction's time once it began.
    assert len(recorded.batches) <= 8, [len(keys) for _, keys in recorded.batches]
    assert sorted(recorded.keys) == sorted(f"celery:task-{n}:failure" for n in range(150))


def test_a_lone_failure_is_recorded_without_waiting_for_more(
    running: tuple[Spool, Drainer, _Batches],
) -> None:
    spool, drainer, recorded = running
    _wait(lambda: not spool.stats()[0])
    put = time.monotonic()
    spool.put(numbered_report(1))
    _wait(lambda: recorded.batches)
    waited = recorded.batches[0][0] - put
    assert waited < drainer.POLL_SECONDS + drainer.QUIET_SECONDS + 0.2
    assert recorded.keys == ["celery:task-1:failure"]


def test_a_spool_file_that_is_not_utf8_goes_to_the_dead_letters(tmp_path: Path) -> None:
    """Rather than stopping the drainer before every later failure."""
    spool = Spool(tmp_path / "spool", owner="test")
    spool.ensure()
    (spool.directory / "00000000000000000001-1-00000000-dbtest.json").write_bytes(b"\xff{")
    spool.put(numbered_report(2))
    recorded = _Batches()
    assert Drainer(spool, recorded).drain() == 2
    assert recorded.keys == ["celery:task-2:failure"]
    assert spool.dead_count() == 1 and not spool.stats()[0]
