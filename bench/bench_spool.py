"""Spool benchmark: the local folder against the Redis stream, side by side in one run.

    NOTIFIER_BENCH_REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/bench_spool.py \
        [--events 2000] [--rounds 6]

(1) put: what a failing task's process pays to keep one report (a file written aside and
    renamed, against one XADD), microseconds per report.
(2) drain: a ``Drainer`` with the real ``SpoolRecorder`` records every spooled report in
    a fresh PostgreSQL database (batches of 200, each report's key in
    ``notifier_processed_failures``), reports per second.

Rounds alternate which spool goes first, so machine noise hits both alike; the medians
are printed with the ratio stream / folder. The bench deletes only its own stream keys.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from notifier.worker.spool import Drainer, EventSpool, Spool
from notifier.worker.spool.drainer import SpoolRecorder
from notifier.worker.spool.stream import StreamSpool

from notifier import FailureKind, FailureReport, JobKind
from notifier.types import utcnow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_worker import REDIS_URL
from scratch import fresh_database


def _reports(count: int) -> list[FailureReport]:
    run = uuid.uuid4().hex[:8]
    return [
        FailureReport(
            key=f"celery:{run}-{n}:failure",
            job=JobKind.IMPORT,
            kind=FailureKind.EXCEPTION,
            task_name="shop.import_products",
            task_id=f"{run}-{n}",
            occurred_at=utcnow(),
            store_id=n % 50,
            exception_class="ValueError",
            message="boom: the supplier feed has no price column",
            traceback='Traceback (most recent call last):\n  File "shop.py", line 9\n' * 8,
            fingerprint=f"celery:shop.import_products:ValueError:store={n % 50}",
        )
        for n in range(count)
    ]


def _one(spool: EventSpool[Any], recorder: SpoolRecorder, count: int) -> tuple[float, float]:
    """Microseconds per put, and reports recorded per second by a drainer."""
    reports = _reports(count)
    started = time.perf_counter()
    for report in reports:
        spool.put(report)
    put_us = (time.perf_counter() - started) / count * 1e6
    drainer = Drainer(spool, recorder)
    started = time.perf_counter()
    handled = 0
    while handled < count:
        handled += drainer.drain()
    return put_us, count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    stream = f"bench:spool:{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(REDIS_URL)
    results: dict[str, list[tuple[float, float]]] = {"folder": [], "stream": []}
    with fresh_database() as url, tempfile.TemporaryDirectory() as tmp:
        recorder = SpoolRecorder(url, cooldown=timedelta(minutes=15))
        spools: dict[str, EventSpool[Any]] = {
            "folder": Spool(Path(tmp) / "spool"),
            "stream": StreamSpool(REDIS_URL, stream=stream),
        }
        try:
            _one(spools["folder"], recorder, 200)  # warm up: engine, schema check, group
            _one(spools["stream"], recorder, 200)
            for round_ in range(args.rounds):
                order = ["folder", "stream"] if round_ % 2 == 0 else ["stream", "folder"]
                for name in order:
                    results[name].append(_one(spools[name], recorder, args.events))
        finally:
            recorder.close()
            client.delete(stream, f"{stream}:dead")
    print(f"{args.events} reports per round, {args.rounds} rounds, PostgreSQL, Redis")
    medians = {}
    for name, rows in results.items():
        put = statistics.median(r[0] for r in rows)
        drain = statistics.median(r[1] for r in rows)
        medians[name] = (put, drain)
        print(f"  {name:7} put {put:7.1f} us/report   drain {drain:7.0f} reports/s")
    print(f"  put cost, stream / folder: {medians['stream'][0] / medians['folder'][0]:.2f}")
    print(f"  drain throughput, stream / folder: {medians['stream'][1] / medians['folder'][1]:.2f}")


if __name__ == "__main__":
    main()
