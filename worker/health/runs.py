"""Which of this worker's runs are past their limit, seen from its main process.

The worker's main process already holds every active request (``celery.worker.state``),
with the time its pool accepted it and the pid running it. A scan every few seconds
finds the runs past their limit; nothing is written for a run that finishes in time, so
the success path costs nothing. Observed durations are kept per task name (the time from
a run's start to the scan that no longer sees it: runs shorter than a scan interval are
rarely seen, the long runs that matter for a limit always are); the health loop's
heartbeat transaction adds the new ones to the store and reads back the shared p99
(:meth:`RunWatch.share`), so a restarted worker keeps it and every worker uses the same.

A run's limit is its hard time limit when it has one; else the task's own override
(``notifier_run_limit`` on the task, or ``notifier_run_limits = {name: seconds}`` in the
app's config); else ``notifier_run_limit_multiple`` times its observed p99 duration, but
never below ``notifier_run_limit_floor``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from notifier.health import OverdueRun, p99, record_durations, shared_p99s

from ..decorators import spec_of, task_arguments
from ..redaction import safe_arguments

DEFAULT_FLOOR = 600.0  # seconds: ten minutes, before a task has a history
DEFAULT_MULTIPLE = 3.0
#: Durations kept in memory per task name (the store keeps its own latest ones).
_SAMPLES = 500


def positive(value: Any) -> float | None:
    """A setting's number when it is one above zero, else None (the caller's default)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class RunWatch:
    """The runs of one worker past their limit, and the durations it has seen, in memory."""

    def __init__(
        self,
        app: Any,
        *,
        all_tasks: bool = False,
        floor: float = DEFAULT_FLOOR,
        multiple: float = DEFAULT_MULTIPLE,
        overrides: Mapping[str, float] | None = None,
    ) -> None:
        self.app = app
        self.all_tasks = all_tasks
        self.floor = floor
        self.multiple = multiple
        self.overrides = dict(overrides or {})
        self._durations: dict[str, deque[float]] = {}
        #: Durations seen since the last :meth:`share`, and the store's p99s it read.
        self._unshared: dict[str, list[float]] = {}
        self._shared: dict[str, float] = {}
        self._active: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_app(cls, app: Any, *, all_tasks: bool = False) -> RunWatch:
        """A watch configured from ``app.conf`` (``notifier_run_limit_*``)."""
        conf = app.conf
        overrides = {
            str(name): limit
            for name, value in dict(conf.get("notifier_run_limits") or {}).items()
            if (limit := positive(value)) is not None
        }
        return cls(
            app,
            all_tasks=all_tasks,
            floor=positive(conf.get("notifier_run_limit_floor")) or DEFAULT_FLOOR,
            multiple=positive(conf.get("notifier_run_limit_multiple")) or DEFAULT_MULTIPLE,
            overrides=overrides,
        )

    def p99(self, task_name: str) -> float | None:
        """The task's p99 duration: the store's (all workers'), else this worker's own.

        None with too few durations seen.
        """
        with self._lock:
            shared = self._shared.get(task_name)
            if shared is not None:
                return shared
            samples = list(self._durations.get(task_name, ()))
        return p99(samples)

    def share(self, db: Session, requests: Iterable[Any]) -> None:
        """Store the durations seen since the last call; read the p99 of ``requests``' tasks.

        Called in the heartbeat's transaction with the requests running now. Durations
        seen while the store cannot be reached stay in this worker's memory only.
        """
        with self._lock:
            unshared, self._unshared = self._unshared, {}
        record_durations(db, unshared)
        names = {str(getattr(request, "task_name", "") or "") for request in requests}
        found = shared_p99s(db, (names | set(unshared)) - {""})
        with self._lock:
            self._shared.update(found)

    def limit(self, task: Any, request: Any) -> tuple[float, str]:
        """The limit in seconds of ``request``'s run, and where it comes from."""
        limits = getattr(request, "time_limits", None) or (None, None)
        hard = positive(limits[0]) or positive(getattr(task, "time_limit", None))
        hard = hard or positive(self.app.conf.get("task_time_limit"))
        if hard is not None:
            return hard, "time_limit"
        name = getattr(task, "name", "")
        override = positive(getattr(task, "notifier_run_limit", None)) or self.overrides.get(name)
        if override is not None:
            return override, "override"
        p99 = self.p99(name)
        if p99 is not None and p99 * self.multiple > self.floor:
            return p99 * self.multiple, "p99"
        return self.floor, "floor"

    def scan(self, requests: Iterable[Any], now: float) -> list[OverdueRun]:
        """The runs among ``requests`` past their limit at ``now`` (a ``time.time()``)."""
        active: dict[str, tuple[str, float]] = {}
        overdue: list[OverdueRun] = []
        for request in list(requests):
            started = positive(getattr(request, "time_start", None))
            if started is None:  # reserved, not yet running
                continue
            name = str(getattr(request, "task_name", "") or "")
            active[str(request.id)] = (name, started)
            task = self.app.tasks.get(name)
            if task is None or (spec_of(task) is None and not self.all_tasks):
                continue
            limit, source = self.limit(task, request)
            if now - started > limit:
                overdue.append(self._overdue(task, request, started, limit, source))
        self._finished(active, now)
        return overdue

    def _watched(self, name: str) -> bool:
        task = self.app.tasks.get(name)
        return task is not None and (self.all_tasks or spec_of(task) is not None)

    def _finished(self, active: dict[str, tuple[str, float]], now: float) -> None:
        with self._lock:
            for task_id, (name, started) in self._active.items():
                if task_id not in active:
                    duration = max(0.0, now - started)
                    samples = self._durations.setdefault(name, deque(maxlen=_SAMPLES))
                    samples.append(duration)
                    if self._watched(name):  # the store keeps only what a limit uses
                        self._unshared.setdefault(name, []).append(duration)
            self._active = active

    def _overdue(
        self, task: Any, request: Any, started: float, limit: float, source: str
    ) -> OverdueRun:
        arguments = task_arguments(task, request.args, request.kwargs)
        return OverdueRun(
            task_id=str(request.id),
            task_name=str(task.name),
            hostname=str(getattr(request, "hostname", "") or ""),
            started_at=datetime.fromtimestamp(started, UTC),
            limit_seconds=round(limit, 3),
            limit_source=source,
            pid=getattr(request, "worker_pid", None),
            arguments=safe_arguments(arguments),
        )
