"""Kicks that never hold up the commit that asked for them.

A kick (``NOTIFIER_DELIVERY_KICK``, e.g. sending a Celery task) runs after a commit that
queued deliveries. Called in place, a slow broker held the web request that committed until
the kick returned. :class:`BackgroundKick` runs it on a thread of its own instead, and
coalesces: while a kick runs, later requests fold into one more call after it, so a stuck
kick costs one thread, not one per commit (the periodic sweep sends the rows anyway).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

__all__ = ["KICK_SLOW_AFTER", "BackgroundKick"]

log = logging.getLogger(__name__)

#: A kick still running after this many seconds is logged (a broker that hangs, say).
KICK_SLOW_AFTER = 10.0


class BackgroundKick:
    """Call ``kick`` on a background thread; calling this object returns at once.

    At most one thread runs the kick and at most one more call waits behind it. A kick
    that raises is logged; one that runs longer than ``slow_after`` seconds is logged when
    the next request finds it still running, and again when it ends.
    """

    def __init__(self, kick: Callable[[], object], *, slow_after: float = KICK_SLOW_AFTER) -> None:
        self.kick = kick
        self.slow_after = slow_after
        self._lock = threading.Lock()
        self._pending = False
        self._started: float | None = None  # when the running kick began; None: idle
        self._warned = False
        self._pid = os.getpid()

    def __call__(self) -> None:
        """Ask for a kick: now if none runs, else once more after the one running."""
        if self._pid != os.getpid():
            # A forked child (a prefork worker, a preloading web server): the parent's thread
            # is not here, and its lock may have been copied held.
            self._lock = threading.Lock()
            self._pid, self._started, self._pending = os.getpid(), None, False
        with self._lock:
            self._pending = True
            if self._started is not None:
                running = time.monotonic() - self._started
                if running > self.slow_after and not self._warned:
                    self._warned = True
                    log.warning(
                        "notifier: the delivery kick has been running for %.0f s; later "
                        "commits wait for it (the periodic sweep sends their deliveries)",
                        running,
                    )
                return
            self._started = time.monotonic()
        threading.Thread(target=self._run, name="notifier-kick", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._started = None
                    return
                self._pending = False
                self._started, self._warned = time.monotonic(), False
                started = self._started
            try:
                self.kick()
            except Exception:
                log.exception("notifier: could not start a dispatcher; the next sweep sends them")
            took = time.monotonic() - started
            if took > self.slow_after:
                log.warning("notifier: the delivery kick took %.1f s", took)
