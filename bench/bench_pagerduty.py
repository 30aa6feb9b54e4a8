"""Failure -> PagerDuty trigger latency on PostgreSQL against a loopback Events API v2.

    .venv/bin/python bench/bench_pagerduty.py [--samples 200]

Each sample hands one failure that opens a new alert (its own fingerprint) to the
drainer's recorder (``SpoolRecorder.record``: the real recording path, ``record_failures``
and the outbox) and stops the clock when the loopback Events API v2 has the ``trigger``,
sent by the recorder's own ``DispatcherThread`` woken by the commit. The receiver is the
tests' (``tests/receivers.py``): it checks each event against the Events API v2 fields and
answers 202, or 400 with the reasons (a 400 stops the run). Prints p50 and p95.

Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench_delivery import failure_report
from notifier.worker.spool import Spool
from notifier.worker.spool.drainer import SpoolRecorder
from scratch import fresh_database

from notifier import Database
from notifier.delivery.endpoints import endpoint_service
from notifier.enums import AlertType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' receiver
from tests.receivers import Receiver, events_v2_answer, serve_receiver

ROUTING_KEY = "B3NCHK3Y0123456789abcdefABCDEF01"


def _endpoint(database: Database, receiver: Receiver) -> None:
    with database.session_scope() as db:
        endpoint_service.create(
            db,
            name="bench pagerduty",
            channel="pagerduty",
            url=receiver.url("/v2/enqueue"),
            routing_key=ROUTING_KEY,
            allow_private=True,
        )


def bench_trigger(url: str, database: Database, receiver: Receiver, samples: int) -> list[float]:
    """Seconds from ``SpoolRecorder.record`` of one failure to its trigger arriving."""
    _endpoint(database, receiver)
    os.environ["NOTIFIER_DELIVERY_ALLOW_PRIVATE"] = "true"
    recorder = SpoolRecorder(url, cooldown=timedelta(0))
    latencies = []
    with tempfile.TemporaryDirectory() as spool_dir:
        recorder.prepare(Spool(Path(spool_dir)))
        try:
            for i in range(samples):
                before = len(receiver.requests)
                # Its own fingerprint: each failure opens an alert, so each is a trigger.
                report = failure_report(
                    i, fingerprint=f"bench:import:{i}", alert_type=AlertType.INTEGRATION
                )
                started = time.monotonic()
                recorder.record([report])
                deadline = started + 30
                while len(receiver.requests) == before:
                    assert time.monotonic() < deadline, "no trigger within 30 s"
                    time.sleep(0.001)
                arrived = receiver.requests[before]
                event = json.loads(arrived.body)
                status, _, answer = events_v2_answer(arrived.body)
                assert status == 202, answer
                assert event["event_action"] == "trigger", event
                latencies.append(arrived.at - started)
        finally:
            recorder.close()
    return latencies


def main() -> None:
    """Run the benchmark and print p50 and p95."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="failures recorded")
    args = parser.parse_args()
    with fresh_database() as url:
        database = Database(url)
        served = serve_receiver(answer=events_v2_answer)
        receiver = next(served)
        try:
            latencies = bench_trigger(url, database, receiver, args.samples)
        finally:
            served.close()
            database.dispose()
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"failure -> PagerDuty trigger received: p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms over {len(latencies)}"
    )


if __name__ == "__main__":
    main()
