"""The job-health watcher: one tick runs every registered check, by one process at a time.

A tick (:func:`watch_tick`) first takes a short lease in the database, so of all the
processes that watch (every worker's drainer, ``notifier watch``) one acts at a time;
then it runs each registered check in its own transaction. A check is a function
``(session, now) -> None`` that opens or resolves alerts; :func:`register_check` adds
one (the schedule's and the hung runs' checks are built in). The watcher needs no Celery:
what it compares is in the database, written by the worker and beat side (the queue check
is not one of its checks: it needs a broker, so each worker's health loop runs it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Database
from ..enums import AlertType, Severity
from ..models import HealthLease, PlatformAlert, ScheduleEntry
from ..outbox import symptom_of
from ..types import utcnow
from .alerting import open_alerts, open_health_alert, resolve_automatically
from .queues import queue_scope
from .runs import check_hung_runs
from .schedule import missed_fingerprint, scheduler_state

__all__ = [
    "BEAT_FINGERPRINT",
    "Check",
    "check_runs",
    "check_schedule",
    "checks",
    "register_check",
    "release_lease",
    "take_lease",
    "unregister_check",
    "watch_tick",
]

logger = logging.getLogger("notifier.health")

#: A job-health check: looks at the store at ``now`` and opens or resolves alerts.
Check = Callable[[Session, datetime], None]
#: The scheduler's own alert.
BEAT_FINGERPRINT = "schedule:scheduler-not-running"
#: What the scheduler's alert explains: the misses of every entry (a root cause's scope).
SCHEDULER_SCOPE = "scheduler"
#: Celery's default queue, for an entry synced before its queue was recorded.
DEFAULT_QUEUE = "celery"
_LEASE = "health-watch"

_checks: dict[str, Check] = {}
_checks_lock = threading.Lock()


def register_check(name: str, check: Check) -> None:
    """Run ``check`` on every tick from now on (a second call with ``name`` replaces it)."""
    with _checks_lock:
        _checks[name] = check


def unregister_check(name: str) -> None:
    """Stop running the check registered as ``name``."""
    with _checks_lock:
        _checks.pop(name, None)


def checks() -> dict[str, Check]:
    """The registered checks, by name, in registration order."""
    with _checks_lock:
        return dict(_checks)


def take_lease(db: Session, holder: str, *, seconds: float, now: datetime | None = None) -> bool:
    """Take or renew the watcher's lease for ``seconds``; False while another holder has it."""
    now = now or utcnow()
    until = now + timedelta(seconds=seconds)
    renewed = db.execute(
        update(HealthLease)
        .where(
            HealthLease.name == _LEASE,
            (HealthLease.holder == holder) | (HealthLease.expires_at < now),
        )
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    if getattr(renewed, "rowcount", 0):
        return True
    if db.get(HealthLease, _LEASE) is not None:
        return False
    try:
        with db.begin_nested():
            db.add(HealthLease(name=_LEASE, holder=holder, expires_at=until))
    except IntegrityError:  # another watcher inserted it first: theirs
        return False
    return True


def release_lease(db: Session, holder: str) -> None:
    """Give the lease up if ``holder`` has it (a watcher stopping, a one-off check)."""
    db.execute(
        delete(HealthLease)
        .where(HealthLease.name == _LEASE, HealthLease.holder == holder)
        .execution_options(synchronize_session=False)
    )


def watch_tick(
    database: Database, holder: str, *, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Run every check once if this holder has the lease; returns whether it ran them.

    Each check runs in its own transaction: one that fails is logged and the others run.
    """
    with database.session_scope(immediate=True) as db:
        if not take_lease(db, holder, seconds=lease_seconds, now=now):
            return False
    for name, check in checks().items():
        try:
            with database.session_scope(immediate=True) as db:
                check(db, now or utcnow())
        except Exception:
            logger.exception("notifier: job-health check %r failed; the next tick retries", name)
    return True


def check_schedule(db: Session, now: datetime) -> None:
    """Open the scheduler's alert, or one alert per missed entry; resolve the beat alert.

    A miss is a symptom of the scheduler and of its entry's queue: while beat is stopped
    (or a queue has no consumer) the miss is still recorded and shown, held back behind
    that root cause's one alert and not delivered (the page shows the entry as ``held``).
    """
    entries = list(db.scalars(select(ScheduleEntry).where(ScheduleEntry.active.is_(True))))
    if not entries:
        return
    beat = scheduler_state(db, now=now)
    if beat.state == "stopped":
        _scheduler_stopped(db, entries, beat.last_tick_at, now)
        for entry in entries:
            _check_entry(db, entry, now)
        return
    if beat.state == "running" and beat.last_tick_at is not None:
        resolved = resolve_automatically(
            db,
            BEAT_FINGERPRINT,
            f"beat ticked at {beat.last_tick_at.isoformat(timespec='seconds')}",
        )
        if resolved is not None:
            _rearm_held(db, entries, resolved, now)
    if beat.state == "unknown":
        return  # beat not seen yet: a miss now would be beat's, not the entry's
    for entry in entries:
        # Beat alive after the entry was due had the chance to send it: a miss is the
        # entry's. Silent since before then, the miss may be beat's: wait for its verdict.
        if beat.last_tick_at is not None and beat.last_tick_at >= entry.next_due_at:
            _check_entry(db, entry, now)


def _overdue(entry: ScheduleEntry, now: datetime) -> bool:
    """Past its due time plus grace with no run started since it was due."""
    due = entry.next_due_at
    if now <= due + timedelta(seconds=entry.grace_seconds):
        return False
    return entry.last_started_at is None or entry.last_started_at < due


def _scheduler_stopped(
    db: Session, entries: list[ScheduleEntry], last_tick_at: datetime | None, now: datetime
) -> None:
    """Open the scheduler's one alert, the root cause of every miss while it is open."""
    held = [entry for entry in entries if _overdue(entry, now)]
    last = last_tick_at.isoformat(timespec="seconds") if last_tick_at else "never"
    open_health_alert(
        db,
        fingerprint=BEAT_FINGERPRINT,
        title="The scheduler (celery beat) is not running",
        description=(
            f"No pass of beat's scheduler loop recorded since {last}: none of the "
            f"{len(entries)} scheduled entries is being sent. Its process stopped, or its "
            "loop hangs in a blocking call while the process lives on: start or restart "
            "`celery -A yourapp beat` (or the worker with -B). "
            f"Missed runs held back behind this alert: {len(held)}."
        ),
        severity=Severity.CRITICAL,
        alert_type=AlertType.SYSTEM,
        metadata={"last_tick_at": last, "entries": len(entries)},
        explains=SCHEDULER_SCOPE,
    )


def _rearm_held(
    db: Session, entries: list[ScheduleEntry], root: PlatformAlert, now: datetime
) -> None:
    """Beat is back: misses held behind it resolve (quietly), their entries due a period on.

    Their channels never heard of them (the scheduler's summary named them); a run that
    is missed again after this opens a new alert that is delivered.
    """
    by_name = {missed_fingerprint(entry.name): entry for entry in entries}
    for fingerprint, alert in open_alerts(db, "schedule:missed:").items():
        if alert.held_back_by_id == root.id and fingerprint in by_name:
            resolve_automatically(db, alert, "the scheduler is running again")
    for entry in entries:
        if entry.missed_due_at is not None and _overdue(entry, now):
            entry.next_due_at = now + timedelta(seconds=entry.period_seconds)
            entry.missed_due_at = None
    db.flush()


def _check_entry(db: Session, entry: ScheduleEntry, now: datetime) -> None:
    due = entry.next_due_at
    if not _overdue(entry, now):
        return
    if entry.missed_due_at is not None and entry.missed_due_at >= due:
        return  # already alerted for this slot
    last = entry.last_started_at.isoformat(timespec="seconds") if entry.last_started_at else None
    with symptom_of(db, [SCHEDULER_SCOPE, queue_scope(entry.queue or DEFAULT_QUEUE)]):
        _open_miss(db, entry, due, last)
    entry.missed_due_at = due
    db.flush()


def _open_miss(db: Session, entry: ScheduleEntry, due: datetime, last: str | None) -> None:
    open_health_alert(
        db,
        fingerprint=missed_fingerprint(entry.name),
        title=f"Scheduled job missed: {entry.name}",
        description=(
            f"{entry.name} ({entry.task}, {entry.schedule_text}) was due at "
            f"{due.isoformat(timespec='seconds')} and no worker started it within "
            f"{entry.grace_seconds:g} s. Last run: {last or 'never'}. Check that a worker "
            "consumes its queue and that the task is not skipped."
        ),
        metadata={
            "entry": entry.name,
            "task": entry.task,
            "schedule": entry.schedule_text,
            "due_at": due.isoformat(),
            "last_run_at": last,
            "queue": entry.queue,
        },
        recovery_task=entry.task,  # the task's next success answers it too
    )


def check_runs(db: Session, now: datetime) -> None:
    """The hung-run check as a watcher check: it reads only the workers' heartbeats."""
    check_hung_runs(db, now)


register_check("schedule", check_schedule)
register_check("hung-runs", check_runs)
