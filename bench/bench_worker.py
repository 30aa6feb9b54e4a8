"""Worker benchmark: a real prefork worker (concurrency 2) on Redis, variants interleaved.

    .venv/bin/python bench/bench_worker.py [--success 10000] [--failures 5000] [--rounds 10]

(1) success path: no-op tasks with the plugin installed, with no plugin, and with
    sentry-sdk's CeleryIntegration sending to a local HTTP sink. Target: plugin/none >= 0.98.
    Then what users run: an ``@import_job`` that returns one row error (below the
    threshold) on the plugin worker, against the same task undecorated on the worker with
    no plugin (and on sentry's). Target: decorated/bare >= 0.97.
(2) failure path: failing ``@import_job`` tasks with the plugin (every event recorded:
    the alert counts them all) against the same tasks with no plugin. Target: >= 0.9.
    Also the CPU each worker's processes (main, pool children, drainer) spent per task.
(3) latency from a task's failure to its notification being committed and visible,
    p50 and p95. Target: p95 < 1 s.

One worker per variant runs throughout; each round pre-loads a queue per variant, then
tells that variant's worker to consume it and times until its tasks counted themselves
done (and, for the plugin, until every event is committed). Variants alternate order
round by round, so machine noise hits all alike. The plugin runs with the cooldown
at its default (15 minutes), so identical failures are a storm: one notification, and an
alert counting every event. Latency is measured on a fourth worker with a cooldown of 0,
so that every failure writes its own notification.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import redis
from celery import Celery
from scratch import fresh_database
from sqlalchemy import func, select

from notifier import Database
from notifier.models import AdminNotification, PlatformAlert

REDIS_URL = os.environ.get("NOTIFIER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
HERE = Path(__file__).resolve().parent
_redis: redis.Redis | None = None


def _counter() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(REDIS_URL)
    return _redis


def make_app(variant: str | None = None) -> Celery:
    """The bench app; in a worker, ``variant`` decides what observes its tasks."""
    from notifier.worker import import_job, install

    app = Celery("bench", broker=REDIS_URL, set_as_current=variant is not None)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=4,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        notifier_database_url=os.environ.get("BENCH_DATABASE", ""),
        notifier_spool_dir=os.environ.get("BENCH_SPOOL", ""),
        notifier_notification_cooldown=float(os.environ.get("BENCH_COOLDOWN", "900")),
    )

    @app.task(name="bench.noop", shared=False)
    def noop(key: str) -> None:
        _counter().incr(key)

    @app.task(name="bench.import_bare", shared=False)
    def import_bare(store_id: int, key: str) -> dict[str, Any]:
        _counter().incr(key)
        return {"imported": 10, "errors": ["line 3: price is not a number"]}

    @app.task(name="bench.import_decorated", shared=False)
    @import_job
    def import_decorated(store_id: int, key: str) -> dict[str, Any]:
        _counter().incr(key)
        return {"imported": 10, "errors": ["line 3: price is not a number"]}

    @app.task(name="bench.fail", shared=False)
    @import_job
    def fail(store_id: int, key: str) -> None:
        _counter().incr(key)
        raise ValueError(f"failed at t={time.time():.6f}")

    if variant in ("plugin", "latency"):
        install(app)
    elif variant == "sentry":
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration

        sentry_sdk.init(dsn=os.environ["BENCH_SENTRY_DSN"], integrations=[CeleryIntegration()])
    return app


def _profile_children(folder: str) -> None:
    """cProfile each pool child from its start to its exit, into ``folder``."""
    import cProfile

    from celery import signals

    profile = cProfile.Profile()

    def start(**_: Any) -> None:
        profile.enable()

    def dump(**_: Any) -> None:
        profile.disable()
        variant = os.environ["BENCH_VARIANT"]
        profile.dump_stats(str(Path(folder) / f"{variant}-{os.getpid()}.prof"))

    signals.worker_process_init.connect(start, weak=False)
    signals.worker_process_shutdown.connect(dump, weak=False)


if os.environ.get("BENCH_VARIANT"):
    app = make_app(os.environ["BENCH_VARIANT"])
    if os.environ.get("BENCH_PROFILE"):
        _profile_children(os.environ["BENCH_PROFILE"])


# -- the benchmark driver ----------------------------------------------------------------


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Worker:
    def __init__(self, variant: str, env: dict[str, str], log: Path) -> None:
        self.variant = variant
        self.hostname = f"bench-{variant}-{uuid.uuid4().hex[:4]}@{socket.gethostname()}"
        self.log = log
        self.handle = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench_worker",
                "worker",
                "-P",
                "prefork",
                "-c",
                "2",
                "-l",
                "WARNING",
                "-n",
                self.hostname,
                "-Q",
                f"bench.idle.{variant}",
                "--without-gossip",
                "--without-mingle",
            ],
            env={**env, "BENCH_VARIANT": variant},
            cwd=HERE,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.handle.close()


def cpu_seconds(worker: Worker) -> dict[str, float]:
    """CPU seconds so far of a bench worker's main process, pool children and drainer.

    Each part's system time is also under ``<part> sys``. Children that exited in between
    are not counted (no pool child is replaced here).
    """
    main = psutil.Process(worker.proc.pid)
    times = main.cpu_times()
    seconds = {"main": times.user + times.system, "children": 0.0, "drainer": 0.0}
    seconds["main sys"] = times.system
    seconds["children sys"] = seconds["drainer sys"] = 0.0
    for child in main.children(recursive=True):
        try:
            times = child.cpu_times()
            part = "drainer" if "drainer" in " ".join(child.cmdline()) else "children"
        except psutil.Error:
            continue
        seconds[part] += times.user + times.system
        seconds[f"{part} sys"] += times.system
    return seconds


def wait_ready(client: Celery, workers: list[Worker]) -> None:
    deadline = time.monotonic() + 180  # a loaded shared machine starts them slowly
    names = {w.hostname for w in workers}
    while time.monotonic() < deadline:
        replies = client.control.ping(timeout=1.0) or []
        if names <= {name for reply in replies for name in reply}:
            return
    raise SystemExit("bench workers did not start; see the logs in " + str(workers[0].log.parent))


def run_round(
    client: Celery, worker: Worker, task: str, count: int, database: Database | None
) -> tuple[float, float]:
    """Seconds until ``count`` tasks ran, and until their events were committed (if any)."""
    queue = f"bench.{worker.variant}.{uuid.uuid4().hex[:6]}"
    key = f"bench:done:{queue}"
    counter = _counter()
    before = _occurrences(database) if database is not None else 0
    with client.producer_or_acquire() as producer:
        for _ in range(count):
            args = (key,) if task == "bench.noop" else (1, key)
            client.send_task(task, args=args, queue=queue, producer=producer)
    start = time.perf_counter()
    client.control.add_consumer(queue, destination=[worker.hostname], reply=True, timeout=10)
    while int(counter.get(key) or 0) < count:
        time.sleep(0.005)
    ran = time.perf_counter() - start
    recorded = ran
    if database is not None:
        while _occurrences(database) - before < count:
            time.sleep(0.005)
        recorded = time.perf_counter() - start
    client.control.cancel_consumer(queue, destination=[worker.hostname], reply=True, timeout=10)
    counter.delete(key)
    return ran, recorded


def _occurrences(database: Database | None) -> int:
    assert database is not None
    with database.session_scope() as db:
        return int(
            db.scalar(select(func.coalesce(func.sum(PlatformAlert.occurrence_count), 0))) or 0
        )


def latency(client: Celery, worker: Worker, database: Database, samples: int) -> list[float]:
    """Seconds from each failure (time in its message) until its notification is visible."""
    queue = f"bench.latency.{uuid.uuid4().hex[:6]}"
    client.control.add_consumer(queue, destination=[worker.hostname], reply=True, timeout=10)
    with database.session_scope() as db:
        last_id = int(db.scalar(select(func.coalesce(func.max(AdminNotification.id), 0))) or 0)
    seen: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        nonlocal last_id
        while not stop.is_set():
            with database.session_scope() as db:
                rows = db.execute(
                    select(AdminNotification.id, AdminNotification.message).where(
                        AdminNotification.id > last_id
                    )
                ).all()
            now = time.time()
            for row_id, message in rows:
                last_id = max(last_id, row_id)
                match = re.search(r"t=([0-9.]+)", message)
                if match:
                    seen.append(now - float(match.group(1)))
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    for _ in range(samples):
        client.send_task("bench.fail", args=(2, "bench:latency"), queue=queue)
        time.sleep(0.02)
    deadline = time.monotonic() + 60
    while len(seen) < samples and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join()
    with database.session_scope() as db:
        stored = db.scalar(select(func.count()).where(AdminNotification.store_id == 2))
    print(f"latency: {len(seen)} seen by the poller, {stored} stored", file=sys.stderr)
    client.control.cancel_consumer(queue, destination=[worker.hostname], reply=True, timeout=10)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--success", type=int, default=10_000)
    parser.add_argument("--failures", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument(
        "--spool-root",
        default=None,
        help="the folder the workers' spools go in (default: a temporary folder, on /tmp's "
        "file system); e.g. /dev/shm to see what the disk costs",
    )
    parser.add_argument(
        "--profile-children",
        default=None,
        metavar="DIR",
        help="cProfile each pool child of the none and plugin workers, written to DIR",
    )
    options = parser.parse_args()

    _counter().flushdb()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    client = make_app()
    with (
        fresh_database() as url,
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(dir=options.spool_root) as spools,
    ):
        database = Database(url)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
            "BENCH_DATABASE": url,
            "BENCH_SPOOL": str(Path(spools) / "spool"),
            "BENCH_SENTRY_DSN": f"http://public@127.0.0.1:{sink.server_port}/1",
        }
        profiled = {"BENCH_PROFILE": options.profile_children} if options.profile_children else {}
        workers = {
            v: Worker(v, {**env, **profiled} if v != "sentry" else env, Path(tmp) / f"{v}.log")
            for v in ("none", "plugin", "sentry")
        }
        # Latency needs a notification per failure: its own worker, with a cooldown of 0.
        # (and its own spool: the plugin worker's drainer would record its events otherwise)
        latency_env = {**env, "BENCH_COOLDOWN": "0", "BENCH_SPOOL": str(Path(spools) / "lspool")}
        workers["latency"] = Worker("latency", latency_env, Path(tmp) / "latency.log")
        try:
            wait_ready(client, list(workers.values()))
            for worker in workers.values():  # warm up every pool
                run_round(client, worker, "bench.noop", 200, None)
            totals: dict[str, float] = {"none": 0.0, "plugin": 0.0, "sentry": 0.0}
            decorated: dict[str, float] = {"none": 0.0, "plugin": 0.0, "sentry": 0.0}
            per_round = options.success // options.rounds
            for r in range(options.rounds):
                order = ["none", "plugin", "sentry"]
                order = order[r % 3 :] + order[: r % 3]
                for variant in order:
                    totals[variant] += run_round(
                        client, workers[variant], "bench.noop", per_round, None
                    )[0]
                for variant in order:
                    task = "bench.import_decorated" if variant == "plugin" else "bench.import_bare"
                    decorated[variant] += run_round(
                        client, workers[variant], task, per_round, None
                    )[0]
            fail_totals = {"none": 0.0, "plugin": 0.0, "plugin_ran": 0.0}
            fail_cpu: dict[str, dict[str, float]] = {"none": {}, "plugin": {}}
            per_round = options.failures // options.rounds
            for r in range(options.rounds):
                for variant in ["none", "plugin"] if r % 2 == 0 else ["plugin", "none"]:
                    db = database if variant == "plugin" else None
                    before = cpu_seconds(workers[variant])
                    ran, recorded = run_round(client, workers[variant], "bench.fail", per_round, db)
                    for part, seconds in cpu_seconds(workers[variant]).items():
                        spent = seconds - before.get(part, 0.0)
                        fail_cpu[variant][part] = fail_cpu[variant].get(part, 0.0) + spent
                    if variant == "plugin":
                        fail_totals["plugin"] += recorded
                        fail_totals["plugin_ran"] += ran
                    else:
                        fail_totals["none"] += ran
            recorded_total = _occurrences(database)
            lat = sorted(latency(client, workers["latency"], database, options.latency_samples))
        finally:
            for worker in workers.values():
                worker.stop()
            database.dispose()
            sink.shutdown()

    print(
        f"success path: {options.success} no-op tasks, prefork -c 2, Redis, {options.rounds} rounds"
    )
    for variant in ("none", "plugin", "sentry"):
        print(
            f"  {variant:7s} {totals[variant]:7.2f} s  "
            f"{options.success / totals[variant]:8.0f} tasks/s"
        )
    print(f"  plugin / none throughput: {totals['none'] / totals['plugin']:.3f} (target >= 0.98)")
    print(f"  sentry / none throughput: {totals['none'] / totals['sentry']:.3f}")
    print(
        f"success path of an import job returning 1 row error ({options.success} tasks): "
        "@import_job with the plugin vs the same task undecorated without it"
    )
    for variant in ("none", "plugin", "sentry"):
        label = {"none": "bare", "plugin": "decorated", "sentry": "sentry"}[variant]
        print(
            f"  {label:9s} {decorated[variant]:7.2f} s  "
            f"{options.success / decorated[variant]:8.0f} tasks/s"
        )
    print(
        f"  decorated / bare throughput: {decorated['none'] / decorated['plugin']:.3f} "
        "(target >= 0.97)"
    )
    print(f"  sentry / bare throughput: {decorated['none'] / decorated['sentry']:.3f}")
    print(f"failure path: {options.failures} failing tasks")
    print(f"  none    {fail_totals['none']:7.2f} s")
    print(
        f"  plugin  {fail_totals['plugin_ran']:7.2f} s to run, "
        f"{fail_totals['plugin']:7.2f} s until every event committed"
    )
    print(
        f"  plugin / none throughput (all events committed): "
        f"{fail_totals['none'] / fail_totals['plugin']:.3f} (target >= 0.9)"
    )
    failures = per_round * options.rounds
    for variant in ("none", "plugin"):
        us = {part: seconds / failures * 1e6 for part, seconds in fail_cpu[variant].items()}
        split = "  ".join(
            f"{part} {us[part]:.0f} (sys {us[part + ' sys']:.0f})"
            for part in ("main", "children", "drainer")
        )
        print(f"  CPU per failing task, {variant:6s} (us): {split}")
    print(f"  events recorded: {recorded_total} of {failures} (alert occurrence_count)")
    if lat:
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, round(0.95 * len(lat)) - 1)]
        print(
            f"latency failure -> notification committed ({len(lat)} samples): "
            f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (target p95 < 1000 ms)"
        )


if __name__ == "__main__":
    main()
