"""The beat schedule as the store knows it: entries, their runs, beat's ticks, their state.

The worker and beat side (which can import Celery) write here: :func:`sync_entries` at
start, :func:`run_started` / :func:`run_finished` for each run of a beat entry, and
:func:`beat_ticked` from the beat process. The watcher (``watch.py``), the page and the
API read it back, none of them needing Celery: each entry carries the time its next run
should start, computed by the side that knows the schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import HealthHeartbeat, ScheduleEntry
from ..text import clip
from ..types import utcnow
from .alerting import FinishedRun, resolve_automatically

__all__ = [
    "BEAT",
    "DEFAULT_BEAT_SILENCE",
    "DEFAULT_GRACE_FLOOR",
    "DEFAULT_GRACE_FRACTION",
    "EntrySpec",
    "EntryState",
    "SchedulerState",
    "beat_ticked",
    "entry_states",
    "grace_for",
    "missed_fingerprint",
    "run_finished",
    "run_started",
    "scheduler_state",
    "sync_entries",
]

#: The heartbeat name of the beat scheduler.
BEAT = "beat"
#: Grace before a late run counts as missed: this share of its period, at least the floor.
DEFAULT_GRACE_FRACTION = 0.1
DEFAULT_GRACE_FLOOR = 60.0
#: Silence after which a beat never seen at all counts as stopped, counted from when its
#: first entry was synced: beat's default longest interval (300 s) plus its grace.
DEFAULT_BEAT_SILENCE = 300.0 + max(300.0 * DEFAULT_GRACE_FRACTION, DEFAULT_GRACE_FLOOR)
#: Finished states that are not the end of a run (it runs again).
_NOT_FINISHED = {"RETRY"}


def grace_for(
    period_seconds: float,
    *,
    fraction: float = DEFAULT_GRACE_FRACTION,
    floor: float = DEFAULT_GRACE_FLOOR,
) -> float:
    """How late a run may start before it counts as missed: max(fraction x period, floor)."""
    return max(period_seconds * fraction, floor)


def missed_fingerprint(name: str) -> str:
    """The stable fingerprint of one entry's miss alert."""
    return f"schedule:missed:{name}"


@dataclass(frozen=True)
class EntrySpec:
    """One beat entry, as the side that knows its schedule describes it."""

    name: str
    task: str
    schedule_text: str
    period_seconds: float
    grace_seconds: float
    #: When the first run should start, counted from now (used for a new or changed entry).
    first_due_at: datetime
    #: The queue its runs are sent to; None: the app's default queue was not known.
    queue: str | None = None
    #: When the scheduler itself will next send it, as beat computes it at its start from
    #: what it remembers of the last run (None: not known, as in a worker's sync). A beat
    #: restarted without its schedule file starts an interval entry's clock afresh.
    scheduler_due_at: datetime | None = None


def sync_entries(db: Session, specs: Iterable[EntrySpec], *, now: datetime | None = None) -> None:
    """Write the current schedule: new entries, changed ones, and those gone (inactive).

    An entry that is unchanged keeps its next due time and its last run, but is due no
    earlier than its ``scheduler_due_at`` (beat restarted: it sends the entry then, not at
    the time counted from the last run), unless a miss of its current slot is open (that
    alert waits for a run, or for beat's return to re-arm it). An entry whose schedule
    changed is due at its new ``scheduler_due_at``, else its ``first_due_at``.
    """
    now = now or utcnow()
    wanted = {spec.name: spec for spec in specs}
    known = {entry.name: entry for entry in db.scalars(select(ScheduleEntry))}
    for name, spec in wanted.items():
        entry = known.get(name)
        if entry is None:
            entry = ScheduleEntry(name=clip(name, 200), created_at=now)
            entry.next_due_at = spec.scheduler_due_at or spec.first_due_at
            try:
                with db.begin_nested():
                    _describe(entry, spec, now)
                    db.add(entry)
            except IntegrityError:  # another process synced it first: same facts
                continue
            continue
        if entry.schedule_text != spec.schedule_text or not entry.active:
            entry.next_due_at = spec.scheduler_due_at or spec.first_due_at
            entry.missed_due_at = None
        elif spec.scheduler_due_at is not None and not _missing(entry):
            entry.next_due_at = max(entry.next_due_at, spec.scheduler_due_at)
        _describe(entry, spec, now)
    for name, entry in known.items():
        if name not in wanted and entry.active:
            entry.active = False
            entry.synced_at = now
    db.flush()


def _missing(entry: ScheduleEntry) -> bool:
    """Whether a miss alert is open for the entry's current slot."""
    return entry.missed_due_at is not None and entry.missed_due_at >= entry.next_due_at


def _describe(entry: ScheduleEntry, spec: EntrySpec, now: datetime) -> None:
    entry.task = clip(spec.task, 200)
    entry.schedule_text = clip(spec.schedule_text, 200)
    entry.period_seconds = spec.period_seconds
    entry.grace_seconds = spec.grace_seconds
    entry.queue = clip(spec.queue, 255) if spec.queue else None
    entry.active = True
    entry.synced_at = now


def run_started(
    db: Session, name: str, *, task_id: str, next_due_at: datetime, at: datetime | None = None
) -> None:
    """A worker started a run of entry ``name``; the next one is due at ``next_due_at``."""
    entry = db.get(ScheduleEntry, name)
    if entry is None:
        return
    entry.last_started_at = at or utcnow()
    entry.last_task_id = clip(task_id, 64)
    entry.last_state = "STARTED"
    entry.next_due_at = next_due_at
    db.flush()


def run_finished(
    db: Session, name: str, *, task_id: str, state: str, at: datetime | None = None
) -> None:
    """A worker finished a run of entry ``name``: its miss alert, if open, resolves itself."""
    entry = db.get(ScheduleEntry, name)
    if entry is None:
        return
    at = at or utcnow()
    entry.last_state = clip(state, 16)
    entry.last_task_id = clip(task_id, 64)
    if state in _NOT_FINISHED:
        db.flush()
        return
    entry.last_finished_at = at
    if state == "SUCCESS":
        entry.last_success_at = at
    entry.missed_due_at = None
    db.flush()
    resolve_automatically(
        db,
        missed_fingerprint(name),
        f"run {task_id} finished at {at.isoformat(timespec='seconds')}",
        run=FinishedRun(entry.task, task_id, at, state),
    )


def beat_ticked(
    db: Session,
    *,
    stale_after_seconds: float,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    """Beat is alive; it counts as stopped after ``stale_after_seconds`` of silence."""
    at = at or utcnow()
    beat = db.get(HealthHeartbeat, BEAT)
    if beat is None:
        try:
            with db.begin_nested():
                db.add(
                    HealthHeartbeat(
                        name=BEAT,
                        seen_at=at,
                        stale_after_seconds=stale_after_seconds,
                        detail=clip(detail, 200) if detail else None,
                    )
                )
            return
        except IntegrityError:  # a second beat wrote first: update it below
            beat = db.get(HealthHeartbeat, BEAT, populate_existing=True)
            if beat is None:
                return
    beat.seen_at = at
    beat.stale_after_seconds = stale_after_seconds
    beat.detail = clip(detail, 200) if detail else None
    db.flush()


@dataclass(frozen=True)
class EntryState:
    """One entry as the page and the API show it."""

    name: str
    task: str
    schedule: str
    period_seconds: float
    grace_seconds: float
    next_due_at: datetime
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_success_at: datetime | None
    last_task_id: str | None
    last_state: str | None
    #: ``ok``, ``running``, ``late`` (past due, within grace), ``missed``, ``held`` (missed
    #: while the scheduler is down: its alert is held behind the scheduler's), ``inactive``.
    state: str


@dataclass(frozen=True)
class SchedulerState:
    """Beat's liveness: ``running``, ``stopped``, or ``unknown`` (never seen)."""

    state: str
    last_tick_at: datetime | None
    stale_after_seconds: float | None
    detail: str | None


def scheduler_state(db: Session, *, now: datetime | None = None) -> SchedulerState:
    """Whether beat ticks now.

    A beat never seen counts as stopped once ``DEFAULT_BEAT_SILENCE`` has passed since the
    first entry was synced (``unknown`` before that, or with no entry at all).
    """
    now = now or utcnow()
    beat = db.get(HealthHeartbeat, BEAT)
    if beat is None:
        first = db.scalar(
            select(func.min(ScheduleEntry.created_at)).where(ScheduleEntry.active.is_(True))
        )
        silent = first is not None and now > first + timedelta(seconds=DEFAULT_BEAT_SILENCE)
        return SchedulerState("stopped" if silent else "unknown", None, None, None)
    silent = now - beat.seen_at > timedelta(seconds=beat.stale_after_seconds)
    return SchedulerState(
        "stopped" if silent else "running", beat.seen_at, beat.stale_after_seconds, beat.detail
    )


def state_of(entry: ScheduleEntry, now: datetime, *, scheduler_stopped: bool = False) -> str:
    """The state word of one entry at ``now`` (see :class:`EntryState`)."""
    if not entry.active:
        return "inactive"
    started = entry.last_started_at
    finished = entry.last_finished_at
    unfinished = started is not None and (finished is None or finished < started)
    if unfinished and entry.last_state != "RETRY":
        return "running"
    if now <= entry.next_due_at:
        return "ok"
    if now <= entry.next_due_at + timedelta(seconds=entry.grace_seconds):
        return "late"
    return "held" if scheduler_stopped else "missed"


def entry_states(
    db: Session, *, now: datetime | None = None, include_inactive: bool = False
) -> list[EntryState]:
    """Every entry with its state, by name."""
    now = now or utcnow()
    query = select(ScheduleEntry).order_by(ScheduleEntry.name)
    if not include_inactive:
        query = query.where(ScheduleEntry.active.is_(True))
    stopped = scheduler_state(db, now=now).state == "stopped"
    return [
        EntryState(
            name=entry.name,
            task=entry.task,
            schedule=entry.schedule_text,
            period_seconds=entry.period_seconds,
            grace_seconds=entry.grace_seconds,
            next_due_at=entry.next_due_at,
            last_started_at=entry.last_started_at,
            last_finished_at=entry.last_finished_at,
            last_success_at=entry.last_success_at,
            last_task_id=entry.last_task_id,
            last_state=entry.last_state,
            state=state_of(entry, now, scheduler_stopped=stopped),
        )
        for entry in db.scalars(query)
    ]
