"""Delivery benchmark on PostgreSQL against a loopback webhook receiver, variants in one run.

    .venv/bin/python bench/bench_delivery.py [--count 1000] [--rounds 3] [--samples 200]
                                             [--flaky 10000]

(1) throughput: ``dispatch_batches`` sending ``count`` queued webhooks, against a bare
    ``requests.post`` loop sending the same bodies and headers to the same receiver.
    Target: at least 0.8 of bare. Variants alternate order round by round.
(2) latency from a failure being handed to the drainer's recorder (``SpoolRecorder.record``,
    what the drainer calls for each spooled batch) to its webhook arriving, through the
    recorder's own DispatcherThread woken by the commit. p50 and p95; target p95 < 2 s.
    The worker -> spool -> drainer hop is measured by bench_worker.py (3).
(3) ``flaky`` deliveries to a receiver answering 503 to a random half of the requests;
    between rounds every retry is made due at once. Deliveries that use all their attempts
    are replayed, as an operator would. Target: all delivered, 0 lost, 0 ids acknowledged
    twice.

Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from notifier.worker.spool import Spool
from notifier.worker.spool.drainer import SpoolRecorder
from scratch import fresh_database
from sqlalchemy import func, select, update

from notifier import Database, FailureReport, JobKind, admin_notification_service
from notifier.delivery.dispatch import DispatchSettings, dispatch_batches, replay_failed_since
from notifier.delivery.endpoints import endpoint_service
from notifier.enums import DeliveryStatus
from notifier.models import Base, Delivery
from notifier.types import utcnow

SETTINGS = DispatchSettings(allow_private=True)


@dataclass
class Sink:
    """What the loopback receiver saw: every request, and the ids it answered 2xx."""

    fail_ratio: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    requests: list[tuple[bytes, dict[str, str], float]] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def reset(self, fail_ratio: float = 0.0) -> None:
        """Forget what arrived; answer 503 to ``fail_ratio`` of what comes next."""
        with self.lock:
            self.requests.clear()
            self.acknowledged.clear()
            self.fail_ratio = fail_ratio


@contextmanager
def serve() -> Iterator[Sink]:
    """A threading HTTP receiver on 127.0.0.1 that keeps what it is sent."""
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections open, as real receivers (Slack, nginx, ...) do; a
        # client that opens one per request (requests.post) still can.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with sink.lock:
                status = 503 if sink.rng.random() < sink.fail_ratio else 204
                sink.requests.append((body, dict(self.headers), time.monotonic()))
                if status == 204:
                    sink.acknowledged.append(self.headers.get("webhook-id", ""))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = int(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def _empty(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def _endpoint(database: Database, sink: Sink) -> None:
    with database.session_scope() as db:
        endpoint_service.create(
            db,
            name="bench",
            channel="webhook",
            url=f"http://127.0.0.1:{sink.port}/hook",
            allow_private=True,
        )


def _queue(database: Database, count: int) -> None:
    """``count`` notifications, each queueing one webhook delivery, in chunks of 500."""
    for start in range(0, count, 500):
        with database.session_scope() as db:
            for i in range(start, min(count, start + 500)):
                admin_notification_service.create_notification(
                    db, type="import_failure", title=f"Import {i} failed", message="bad row"
                )


def _drain(database: Database) -> None:
    dispatch_batches(database, SETTINGS)


def bench_throughput(database: Database, sink: Sink, count: int, rounds: int) -> dict[str, float]:
    """Seconds for ``count`` sends by ``dispatch_batches`` and by two bare requests loops.

    ``bare`` is ``requests.post`` per send (a new connection each time); ``session`` is one
    ``requests.Session`` (one kept-alive connection), like with like for ``dispatch_batches``,
    which keeps its connections for the length of a run.
    """
    seconds = dict.fromkeys(("ours", "bare", "session"), 0.0)
    sent: list[tuple[bytes, dict[str, str]]] = []
    for r in range(rounds):
        order = ("ours", "bare", "session")
        for variant in order[r % 3 :] + order[: r % 3] if r else order:
            if variant != "ours":  # round 0 runs ours first, so the bodies exist
                seconds[variant] += _bare(sink, sent, keep_alive=variant == "session")
                continue
            _empty(database)
            _endpoint(database, sink)
            _queue(database, count)
            sink.reset()
            started = time.perf_counter()
            _drain(database)
            seconds["ours"] += time.perf_counter() - started
            assert len(sink.acknowledged) == count, len(sink.acknowledged)
            sent = [(body, headers) for body, headers, _ in sink.requests]
    return seconds


def _bare(sink: Sink, sent: list[tuple[bytes, dict[str, str]]], *, keep_alive: bool) -> float:
    url = f"http://127.0.0.1:{sink.port}/hook"
    keep = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")
    prepared = [(body, {k: v for k, v in h.items() if k.lower() in keep}) for body, h in sent]
    sink.reset()
    session = requests.Session() if keep_alive else None
    post = session.post if session is not None else requests.post
    started = time.perf_counter()
    for body, headers in prepared:
        post(url, data=body, headers=headers, timeout=10).raise_for_status()
    elapsed = time.perf_counter() - started
    if session is not None:
        session.close()
    assert len(sink.acknowledged) == len(sent)
    return elapsed


def failure_report(i: int, **fields: Any) -> FailureReport:
    """The ``i``-th import failure of store 1, a new key each time (``fields`` added)."""
    return FailureReport(
        key=f"bench:{uuid.uuid4()}",
        job=JobKind.IMPORT,
        task_name="shop.import",
        task_id=str(i),
        store_id=1,
        store_name="Acme",
        exception_class="ValueError",
        message=f"row {i} is bad",
        **fields,
    )


def bench_latency(url: str, database: Database, sink: Sink, samples: int) -> list[float]:
    """Seconds from ``SpoolRecorder.record`` of one failure to its webhook arriving."""
    _empty(database)
    _endpoint(database, sink)
    sink.reset()
    os.environ["NOTIFIER_DELIVERY_ALLOW_PRIVATE"] = "true"
    recorder = SpoolRecorder(url, cooldown=timedelta(0))
    latencies = []
    with tempfile.TemporaryDirectory() as spool_dir:
        recorder.prepare(Spool(Path(spool_dir)))
        try:
            for i in range(samples):
                before = len(sink.requests)
                report = failure_report(i)
                started = time.monotonic()
                recorder.record([report])
                deadline = started + 30
                while len(sink.requests) == before:
                    assert time.monotonic() < deadline, "no webhook within 30 s"
                    time.sleep(0.001)
                latencies.append(sink.requests[before][2] - started)
        finally:
            recorder.close()
    return latencies


def bench_flaky(database: Database, sink: Sink, count: int) -> dict[str, int]:
    """Deliver ``count`` webhooks through a receiver failing half the time; what happened."""
    _empty(database)
    _endpoint(database, sink)
    _queue(database, count)
    with database.session_scope() as db:
        expected = set(db.scalars(select(Delivery.message_id)))
    sink.reset(fail_ratio=0.5)
    since = utcnow() - timedelta(hours=1)
    rounds = replayed = 0
    while True:
        _drain(database)
        rounds += 1
        with database.session_scope() as db:
            pending = db.scalar(
                select(func.count()).where(Delivery.status == DeliveryStatus.PENDING)
            )
            if pending:  # fast-forward: every retry is due now
                db.execute(
                    update(Delivery)
                    .where(Delivery.status == DeliveryStatus.PENDING)
                    .values(next_attempt_at=utcnow() - timedelta(seconds=1))
                )
                continue
            failed = replay_failed_since(db, since)
            replayed += failed
            if not failed:
                break
    with database.session_scope() as db:
        succeeded = db.scalar(
            select(func.count()).where(Delivery.status == DeliveryStatus.SUCCEEDED)
        )
    acknowledged = Counter(sink.acknowledged)
    return {
        "deliveries": count,
        "requests": len(sink.requests),
        "answered_503": len(sink.requests) - len(sink.acknowledged),
        "rounds": rounds,
        "replayed_after_8_attempts": replayed,
        "succeeded": int(succeeded or 0),
        "lost": len(expected - set(acknowledged)),
        "acknowledged_twice": sum(1 for n in acknowledged.values() if n > 1),
        "unknown_ids": len(set(acknowledged) - expected),
    }


def main() -> None:
    """Run the three benchmarks and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="webhooks per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200, help="latency samples")
    parser.add_argument("--flaky", type=int, default=10000, help="deliveries in (3)")
    args = parser.parse_args()

    with fresh_database() as url:
        database = Database(url)
        with serve() as sink:
            seconds = bench_throughput(database, sink, args.count, args.rounds)
            n = args.count * args.rounds
            rate = {variant: n / spent for variant, spent in seconds.items()}
            print(
                f"(1) throughput: dispatch_batches {rate['ours']:.0f}/s; "
                f"bare requests.post {rate['bare']:.0f}/s, "
                f"ratio {rate['ours'] / rate['bare']:.2f}; "
                f"bare requests.Session {rate['session']:.0f}/s, "
                f"ratio {rate['ours'] / rate['session']:.2f} (target >= 0.8)"
            )
            latencies = bench_latency(url, database, sink, args.samples)
            p50 = statistics.median(latencies)
            p95 = statistics.quantiles(latencies, n=20)[-1]
            print(
                f"(2) failure -> webhook received: p50 {p50 * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms over {len(latencies)} (target p95 < 2 s)"
            )
            started = time.perf_counter()
            flaky = bench_flaky(database, sink, args.flaky)
            print(
                f"(3) {args.flaky} deliveries, receiver failing half the time, "
                f"{time.perf_counter() - started:.0f} s: "
                + ", ".join(f"{k} {v}" for k, v in flaky.items())
            )
        database.dispose()


if __name__ == "__main__":
    main()
