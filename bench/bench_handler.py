"""What the plugin costs a pool child per failure, in process: failing tasks with and without it.

    .venv/bin/python bench/bench_handler.py [--failures 2000] [--rounds 3] [--spool-root /tmp]

Runs a failing ``@import_job`` task with ``Task.apply`` (Celery's tracer, its failure
handling and its ``task_failure`` signal, in this process) on an app without the plugin
and on one with it, spooling to a folder under ``--spool-root`` (``/dev/shm`` to leave
the disk out), and prints the CPU per failure of each and the difference: the
``task_failure`` handler, the report, the spool's write. The process poses as a pool
child, so no drainer starts and nothing is recorded. ``--profile`` prints a cProfile of
the plugin's rounds instead (its times are inflated, its proportions are not).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from billiard.process import current_process
from celery import Celery
from notifier.worker import import_job, install, uninstall


def _app(plugin: bool, spool: Path) -> tuple[Celery, Any]:
    app = Celery("bench_handler", broker="memory://", set_as_current=False)
    app.conf.update(
        notifier_database_url=f"sqlite:///{spool.parent / 'unused.db'}",
        notifier_spool_dir=str(spool),
    )

    @app.task(name="bench.fail", shared=False)
    @import_job
    def fail(store_id: int, key: str) -> None:
        raise ValueError(f"failed at t={time.time():.6f}")

    if plugin:
        install(app)
    app.finalize()
    return app, app.tasks["bench.fail"]


def _cpu_per_failure(plugin: bool, spool: Path, failures: int) -> float:
    app, task = _app(plugin, spool)
    try:
        for _ in range(50):  # warm up
            task.apply(args=(1, "k"), task_id=uuid.uuid4().hex)
        ids = [uuid.uuid4().hex for _ in range(failures)]
        started = time.process_time()
        for task_id in ids:
            task.apply(args=(1, "k"), task_id=task_id)
        return (time.process_time() - started) / failures * 1e6
    finally:
        if plugin:
            uninstall(app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failures", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spool-root", default=None)
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()
    current_process().name = "ForkPoolWorker-1"  # a pool child: its drainer is elsewhere
    logging.getLogger("celery").setLevel(logging.CRITICAL)  # the failure log lines
    with tempfile.TemporaryDirectory(dir=options.spool_root) as tmp:
        spool = Path(tmp) / "spool"
        if options.profile:
            profile = cProfile.Profile()
            profile.enable()
            _cpu_per_failure(True, spool, options.failures)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            return
        for _ in range(options.rounds):
            none = _cpu_per_failure(False, spool, options.failures)
            plugin = _cpu_per_failure(True, spool, options.failures)
            print(
                f"CPU per failure: none {none:.0f} us, plugin {plugin:.0f} us, "
                f"the plugin adds {plugin - none:.0f} us"
            )


if __name__ == "__main__":
    main()
