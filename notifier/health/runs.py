"""Hung and overlong runs: what workers report of their runs past their limit, and the check.

The success path writes nothing: each worker's main process looks at its own active
requests every few seconds and reports, in its heartbeat row, only the runs that are past
their limit. :func:`check_hung_runs` turns those into one alert per run (fingerprint
``run:overdue:<task id>``) and resolves the alert when the run is no longer reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..enums import AlertType, Severity
from ..models import PlatformAlert, WorkerHeartbeat
from ..types import utcnow
from .alerting import FinishedRun, open_alerts, open_health_alert, resolve_automatically
from .recovery import RECOVERY_RUN_KEY

#: Every hung-run alert's fingerprint starts so; the task id follows.
RUN_FINGERPRINT = "run:overdue:"
#: A heartbeat row this long expired is deleted by the check.
_FORGET_AFTER = timedelta(days=1)
#: Why a limit is what it is, as the worker decided it.
LIMIT_SOURCES = ("time_limit", "override", "p99", "floor")


def span(seconds: float) -> str:
    """``seconds`` for a reader: ``45s``, ``12m 05s``, ``3h 04m``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class OverdueRun:
    """One run past its limit, as its worker reported it (arguments already redacted)."""

    task_id: str
    task_name: str
    hostname: str
    started_at: datetime
    limit_seconds: float
    limit_source: str
    pid: int | None = None
    arguments: Any = field(default=None)

    def elapsed(self, now: datetime) -> float:
        """Seconds it has run at ``now``."""
        return max(0.0, (now - self.started_at).total_seconds())

    def as_json(self) -> dict[str, Any]:
        """The JSON form kept in the heartbeat row."""
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "hostname": self.hostname,
            "started_at": self.started_at.isoformat(),
            "limit_seconds": self.limit_seconds,
            "limit_source": self.limit_source,
            "pid": self.pid,
            "arguments": self.arguments,
        }

    @classmethod
    def from_json(cls, data: Any) -> OverdueRun | None:
        """The run a heartbeat row holds, or None for an entry this version cannot read."""
        try:
            return cls(
                task_id=str(data["task_id"]),
                task_name=str(data["task_name"]),
                hostname=str(data["hostname"]),
                started_at=datetime.fromisoformat(data["started_at"]),
                limit_seconds=float(data["limit_seconds"]),
                limit_source=str(data["limit_source"]),
                pid=int(data["pid"]) if data.get("pid") is not None else None,
                arguments=data.get("arguments"),
            )
        except (KeyError, TypeError, ValueError):
            return None


def record_heartbeat(
    db: Session,
    hostname: str,
    *,
    pid: int,
    queues: list[str],
    overdue: list[OverdueRun],
    ttl: timedelta,
    now: datetime | None = None,
) -> None:
    """Write worker ``hostname``'s heartbeat: alive until ``now + ttl``."""
    now = now or utcnow()
    row = db.get(WorkerHeartbeat, hostname)
    if row is None:
        row = WorkerHeartbeat(hostname=hostname)
        db.add(row)
    row.pid = pid
    row.queues = sorted(set(queues))
    row.overdue_runs = [run.as_json() for run in overdue]
    row.seen_at = now
    row.expires_at = now + ttl
    db.flush()


def forget_worker(db: Session, hostname: str) -> None:
    """Remove ``hostname``'s heartbeat (a worker that stops cleanly consumes nothing more)."""
    db.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.hostname == hostname))


def fresh_heartbeats(db: Session, now: datetime | None = None) -> list[WorkerHeartbeat]:
    """The heartbeats of the workers still reporting at ``now``, by hostname."""
    now = now or utcnow()
    return list(
        db.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.expires_at > now)
            .order_by(WorkerHeartbeat.hostname)
        )
    )


def overdue_runs(db: Session, now: datetime | None = None) -> list[OverdueRun]:
    """Every run past its limit that a live worker reports, the longest-running first."""
    runs = [
        run
        for beat in fresh_heartbeats(db, now)
        for run in map(OverdueRun.from_json, beat.overdue_runs or [])
        if run is not None
    ]
    return sorted(runs, key=lambda run: (run.started_at, run.task_id))


def _describe(run: OverdueRun, now: datetime) -> str:
    why = {
        "time_limit": "its hard time limit",
        "override": "the limit configured for this task",
        "p99": "a multiple of its observed p99 duration",
        "floor": "the default limit",
    }.get(run.limit_source, "its limit")
    pid = f" (pid {run.pid})" if run.pid else ""
    return (
        f"Task {run.task_name} (id {run.task_id}) has run for {span(run.elapsed(now))} on "
        f"worker {run.hostname}{pid}, past {why} of {span(run.limit_seconds)}. "
        f"Arguments: {run.arguments!r}. It is resolved by itself when the run finishes; "
        "if the worker process is lost, its failure is reported as usual."
    )


@dataclass
class CheckOutcome:
    """What one check changed: fingerprints of the alerts it opened and resolved."""

    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def check_hung_runs(db: Session, now: datetime | None = None) -> CheckOutcome:
    """Open an alert per run past its limit; resolve those whose run is no longer reported."""
    now = now or utcnow()
    db.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.expires_at < now - _FORGET_AFTER))
    live = {beat.hostname for beat in fresh_heartbeats(db, now)}
    runs = {f"{RUN_FINGERPRINT}{run.task_id}": run for run in overdue_runs(db, now)}
    current = open_alerts(db, RUN_FINGERPRINT)
    ended = _resolved_at(db, [f for f in runs if f not in current])
    outcome = CheckOutcome()
    for fingerprint, run in runs.items():
        existing = current.get(fingerprint)
        if existing is None and fingerprint in ended and ended[fingerprint] >= run.started_at:
            # A heartbeat written just before this run finished: its alert was resolved by
            # the run's end, and a run that ended is not past its limit again.
            continue
        open_health_alert(
            db,
            current=existing,
            bell=False,
            fingerprint=fingerprint,
            alert_type=AlertType.PERFORMANCE,
            severity=Severity.ERROR,
            title=f"Task {run.task_name} is running past its limit",
            description=_describe(run, now),
            metadata={
                "task_id": run.task_id,
                "task_name": run.task_name,
                "hostname": run.hostname,
                "pid": run.pid,
                "started_at": run.started_at.isoformat(),
                "limit_seconds": run.limit_seconds,
                "limit_source": run.limit_source,
                "arguments": run.arguments,
                RECOVERY_RUN_KEY: run.task_id,  # only this run's end answers it
            },
            systems=["celery", run.hostname],
            recovery_task=run.task_name,
        )
        if existing is None:
            outcome.opened.append(fingerprint)
    for fingerprint, alert in current.items():
        if fingerprint in runs:
            continue
        facts = alert.alert_metadata or {}
        if str(facts.get("hostname", "")) in live:
            finished = FinishedRun(
                str(facts.get("task_name") or alert.recovery_task or ""),
                str(facts.get("task_id") or fingerprint.removeprefix(RUN_FINGERPRINT)),
                now,
                state="FINISHED",
            )
            resolve_automatically(db, alert, "run finished", run=finished)
        else:
            resolve_automatically(
                db,
                alert,
                "its worker stopped reporting (a run lost with its worker process is "
                "reported as a failure)",
            )
        outcome.resolved.append(fingerprint)
    return outcome


def _resolved_at(db: Session, fingerprints: list[str]) -> dict[str, datetime]:
    """When each resolved alert among ``fingerprints`` was resolved."""
    if not fingerprints:
        return {}
    rows = db.execute(
        select(PlatformAlert.fingerprint, PlatformAlert.resolved_at).where(
            PlatformAlert.fingerprint.in_(fingerprints),
            PlatformAlert.is_resolved.is_(True),
            PlatformAlert.resolved_at.is_not(None),
        )
    )
    return {fingerprint: at for fingerprint, at in rows if at is not None}


__all__ = [
    "LIMIT_SOURCES",
    "RUN_FINGERPRINT",
    "CheckOutcome",
    "OverdueRun",
    "check_hung_runs",
    "forget_worker",
    "fresh_heartbeats",
    "overdue_runs",
    "record_heartbeat",
    "span",
]
