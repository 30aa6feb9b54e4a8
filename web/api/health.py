"""Job health in the API: the beat schedule's entries, their last runs and states, and beat."""

from __future__ import annotations

from typing import Literal

from notifier import utcnow
from notifier.health import entry_states, scheduler_state

from ..state import db_session
from .blueprint import api
from .operations import READ_ERRORS, Reply
from .schemas import Output, Timestamp


class ScheduledEntryOut(Output):
    """One beat entry: its schedule, its last run, when the next is due, and its state."""

    name: str
    task: str
    schedule: str
    period_seconds: float
    grace_seconds: float
    next_due_at: Timestamp
    last_started_at: Timestamp | None
    last_finished_at: Timestamp | None
    last_success_at: Timestamp | None
    last_task_id: str | None
    last_state: str | None
    state: Literal["ok", "running", "late", "missed", "held", "inactive"]


class SchedulerOut(Output):
    """Beat's liveness: ``running``, ``stopped``, or ``unknown`` (never seen)."""

    state: Literal["running", "stopped", "unknown"]
    last_tick_at: Timestamp | None
    stale_after_seconds: float | None


class ScheduleHealthOut(Output):
    """The scheduler and every watched entry, by name."""

    scheduler: SchedulerOut
    entries: list[ScheduledEntryOut]


@api.route(
    "GET",
    "/health/schedule",
    summary="Scheduled (beat) entries with their last run, next due time and state; beat's state",
    responses={200: ScheduleHealthOut, **READ_ERRORS},
)
def schedule_health() -> Reply:
    """The schedule as the workers and beat last recorded it."""
    db = db_session()
    now = utcnow()
    entries = [ScheduledEntryOut.model_validate(entry) for entry in entry_states(db, now=now)]
    beat = SchedulerOut.model_validate(scheduler_state(db, now=now))
    return ScheduleHealthOut(scheduler=beat, entries=entries), 200
