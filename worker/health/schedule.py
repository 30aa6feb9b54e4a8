"""What the Celery side knows of the beat schedule: each entry's period, grace and due times.

Read from ``app.conf.beat_schedule`` (the host's entries and ours), so every entry is
watched with no configuration. Interval, crontab and solar schedules all answer
``remaining_estimate(last_run_at)``; the next start after ``t`` is ``now + that``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from celery.schedules import BaseSchedule, schedule

from notifier import Database, Settings, live_redis_url_from_env
from notifier.health import (
    DEFAULT_GRACE_FLOOR,
    DEFAULT_GRACE_FRACTION,
    EntrySpec,
    grace_for,
    sync_entries,
)

__all__ = [
    "WatchedEntry",
    "database_url",
    "entry_queue",
    "live_redis_url",
    "next_due",
    "scheduler_dues",
    "sync_schedule",
    "watched_entries",
]

logger = logging.getLogger("notifier.worker")

#: Per-entry override of the grace, in seconds, in the entry's ``options``.
GRACE_OPTION = "notifier_grace"


@dataclass(frozen=True)
class WatchedEntry:
    """One beat entry with the schedule object that computes its due times."""

    name: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    schedule: BaseSchedule
    grace_seconds: float
    #: The queue its runs are sent to (its options, the app's routes, else the default).
    queue: str | None = None

    def next_due_after(self, moment: datetime) -> datetime:
        """When the run after one started at ``moment`` is due (UTC)."""
        return next_due(self.schedule, moment)

    def period_seconds(self, now: datetime) -> float:
        """The interval, or for crontab and solar the gap between the next two due times."""
        if isinstance(self.schedule, schedule):
            return float(self.schedule.run_every.total_seconds())
        first = self.next_due_after(now)
        return max((self.next_due_after(first) - first).total_seconds(), 1.0)

    def spec(self, now: datetime, scheduler_due_at: datetime | None = None) -> EntrySpec:
        """The entry as the store keeps it (with beat's own next send, when beat syncs)."""
        return EntrySpec(
            name=self.name,
            task=self.task,
            schedule_text=str(self.schedule).strip("<>"),
            period_seconds=self.period_seconds(now),
            grace_seconds=self.grace_seconds,
            first_due_at=self.next_due_after(now),
            queue=self.queue,
            scheduler_due_at=scheduler_due_at,
        )

    def matches(self, args: Any, kwargs: Any) -> bool:
        """Whether a run with these arguments is this entry's (for entries sharing a task)."""
        return tuple(args or ()) == self.args and dict(kwargs or {}) == self.kwargs


def next_due(when: BaseSchedule, last_run_at: datetime) -> datetime:
    """When ``when`` is next due after a run at ``last_run_at`` (UTC; now when overdue)."""
    now = _aware(when.now())
    remaining: timedelta = when.remaining_estimate(last_run_at)
    # To the second: crontab drops the microseconds of ``last_run_at``, so its estimate lands
    # a hair before the minute, and the run after that would look due at once.
    due = now + max(remaining, timedelta(0))
    return due.replace(microsecond=0) + timedelta(seconds=round(due.microsecond / 1e6))


def scheduler_dues(scheduler: Any, names: Iterable[str]) -> dict[str, datetime]:
    """When beat's ``scheduler`` will next send each of the entries ``names``, by name.

    Asked of the scheduler itself (any class: Celery's, django-celery-beat's, ...), from the
    last run it remembers: a beat started without its schedule file counts an interval
    entry from its own start, not from the run the store last saw.
    """
    wanted = set(names)
    dues: dict[str, datetime] = {}
    for name, entry in dict(scheduler.schedule).items():
        when, last = getattr(entry, "schedule", None), getattr(entry, "last_run_at", None)
        if name not in wanted or not isinstance(when, BaseSchedule) or last is None:
            continue
        try:
            dues[name] = next_due(when, last)
        except Exception:  # a schedule that cannot compute: the store keeps its own figure
            logger.debug("notifier: beat's next send of %r is not known", name, exc_info=True)
    return dues


def _aware(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(conf: Mapping[str, Any], key: str, default: float) -> float:
    value = conf.get(key)
    return default if value is None else float(value)


def watched_entries(conf: Mapping[str, Any], app: Any = None) -> list[WatchedEntry]:
    """Every entry of ``conf``'s ``beat_schedule`` (an entry it cannot read is skipped)."""
    fraction = _number(conf, "notifier_schedule_grace_fraction", DEFAULT_GRACE_FRACTION)
    floor = _number(conf, "notifier_schedule_grace_floor", DEFAULT_GRACE_FLOOR)
    found = []
    for name, entry in (conf.get("beat_schedule") or {}).items():
        if not isinstance(entry, Mapping) or not entry.get("task"):
            continue
        when = entry.get("schedule")
        if isinstance(when, int | float):
            when = timedelta(seconds=when)
        if isinstance(when, timedelta):
            when = schedule(when, bool(entry.get("relative")), app=app)
        if not isinstance(when, BaseSchedule):
            continue
        options = entry.get("options") or {}
        watched = WatchedEntry(
            name=str(name),
            task=str(entry["task"]),
            args=tuple(entry.get("args") or ()),
            kwargs=dict(entry.get("kwargs") or {}),
            schedule=when,
            grace_seconds=0.0,
        )
        override = options.get(GRACE_OPTION) if isinstance(options, Mapping) else None
        try:
            period = watched.period_seconds(datetime.now(UTC))
        except Exception:  # a schedule that cannot compute (solar without ephem): unwatched
            logger.exception("notifier: beat entry %r cannot be watched", name)
            continue
        grace = (
            float(override)
            if override is not None
            else grace_for(period, fraction=fraction, floor=floor)
        )
        queue = entry_queue(conf, watched.task, options if isinstance(options, Mapping) else {})
        found.append(
            WatchedEntry(
                watched.name, watched.task, watched.args, watched.kwargs, when, grace, queue
            )
        )
    return found


def _queue_name(target: Any) -> str | None:
    if isinstance(target, str):
        return target or None
    if isinstance(target, Mapping) and target.get("queue"):
        queue = target["queue"]
        return str(getattr(queue, "name", queue))
    return None


def _routed(routes: Any, task: str) -> str | None:
    """The queue ``task_routes`` sends ``task`` to, or None.

    Names and glob patterns; a router function's choice cannot be known without calling
    it, so it is not.
    """
    if isinstance(routes, Mapping):
        for pattern, target in routes.items():
            if isinstance(pattern, str) and fnmatchcase(task, pattern):
                return _queue_name(target)
    elif isinstance(routes, list | tuple):
        for item in routes:
            if (found := _routed(item, task)) is not None:
                return found
    return None


def entry_queue(conf: Mapping[str, Any], task: str, options: Mapping[str, Any]) -> str:
    """The queue a beat entry's runs go to: its options, else the routes, else the default."""
    return (
        _queue_name(options)
        or _routed(conf.get("task_routes"), task)
        or str(conf.get("task_default_queue") or "celery")
    )


def database_url(conf: Mapping[str, Any]) -> str:
    """The notifier's database: the app's ``notifier_database_url``, else the environment's."""
    url = conf.get("notifier_database_url")
    return str(url) if url else Settings.from_env().database_url


def live_redis_url(conf: Mapping[str, Any]) -> str | None:
    """Where commits announce themselves (SQLite's live updates), as the recorder has it."""
    url = conf.get("notifier_live_redis_url")
    return str(url) if url else live_redis_url_from_env()


def sync_schedule(
    database: Database,
    conf: Mapping[str, Any],
    app: Any = None,
    scheduler_due: Mapping[str, datetime] | None = None,
) -> int:
    """Write ``conf``'s beat schedule into the store; returns how many entries it holds.

    ``scheduler_due`` (from :func:`scheduler_dues`, in the beat process): when beat will
    next send each entry; the store expects no run before that.
    """
    now = datetime.now(UTC)
    dues = scheduler_due or {}
    specs = [entry.spec(now, dues.get(entry.name)) for entry in watched_entries(conf, app)]
    with database.session_scope(immediate=True) as db:
        sync_entries(db, specs, now=now)
    return len(specs)
