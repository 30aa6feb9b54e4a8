"""The drainer process: records spooled events for a prefork worker.

A prefork worker's main process dispatches every message to its pool; a drainer thread
there would compete with it for the GIL and slow every task down. So on ``worker_ready``
a prefork worker starts this module as its own process (``python -m notifier.worker.drainer``),
configured through the environment, and stops it on shutdown. It also exits when its
parent is gone; whatever it could not record stays in the spool for the next worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from notifier import Database, metrics

from .recorder import record_batch
from .spool import Drainer, Spool

logger = logging.getLogger("notifier.worker")

_ENV_SPOOL = "NOTIFIER_DRAIN_SPOOL"
_ENV_DATABASE = "NOTIFIER_DRAIN_DATABASE_URL"
_ENV_COOLDOWN = "NOTIFIER_DRAIN_COOLDOWN"
_ENV_PARENT = "NOTIFIER_DRAIN_PARENT"


def start_process(spool: Path, database_url: str, cooldown: timedelta) -> subprocess.Popen[bytes]:
    """Start a drainer process for ``spool``; the URL travels in its environment, not argv."""
    env = {
        **os.environ,
        _ENV_SPOOL: str(spool),
        _ENV_DATABASE: database_url,
        _ENV_COOLDOWN: str(cooldown.total_seconds()),
        _ENV_PARENT: str(os.getpid()),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    return subprocess.Popen([sys.executable, "-m", "notifier.worker.drainer"], env=env)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Ask the drainer to finish its batch and exit; kill it if it does not."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main() -> None:
    """Drain the spool named in the environment until told to stop or orphaned."""
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s: %(levelname)s/drainer] %(message)s"
    )
    database = Database(os.environ[_ENV_DATABASE])
    cooldown = timedelta(seconds=float(os.environ.get(_ENV_COOLDOWN) or 0))
    parent = int(os.environ.get(_ENV_PARENT) or os.getppid())
    drainer = Drainer(
        Spool(Path(os.environ[_ENV_SPOOL])),
        lambda events: record_batch(database, events, cooldown=cooldown),
    )

    def _stop(_signum: int, _frame: Any) -> None:
        drainer.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which stops us
    try:
        drainer.run(alive=lambda: os.getppid() == parent)
    finally:
        database.dispose()
        metrics.process_exiting()


if __name__ == "__main__":
    main()
