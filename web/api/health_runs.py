"""Job health, read side: runs past their limit and the watched queues (API and page).

The rows come from what workers last reported (their heartbeats) and what the last check
saw of each queue; nothing here asks a broker or a worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from notifier import utcnow
from notifier.health import OverdueRun, QueueReport, overdue_runs, queue_reports, span

from ..state import db_session
from .blueprint import api
from .operations import READ_ERRORS, Reply
from .schemas import Output, Timestamp


class RunOut(Output):
    """A run past its limit, as its worker reported it (arguments redacted)."""

    task_id: str
    task_name: str
    hostname: str
    pid: int | None
    started_at: Timestamp
    elapsed_seconds: float = Field(description="How long it has run, at the time of the answer.")
    limit_seconds: float
    limit_source: str = Field(description="time_limit, override, p99 or floor.")
    arguments: Any

    @classmethod
    def of(cls, run: OverdueRun, now: datetime) -> RunOut:
        """The answer for one run at ``now``."""
        return cls(
            task_id=run.task_id,
            task_name=run.task_name,
            hostname=run.hostname,
            pid=run.pid,
            started_at=run.started_at,
            elapsed_seconds=round(run.elapsed(now), 1),
            limit_seconds=run.limit_seconds,
            limit_source=run.limit_source,
            arguments=run.arguments,
        )


class RunsOut(BaseModel):
    """Every run past its limit that a live worker reports, the longest-running first."""

    items: list[RunOut]


class QueueOut(Output):
    """One watched queue as last checked."""

    name: str
    depth: int
    consumers: int = Field(description="Live workers consuming it (and the broker's count).")
    oldest_age_seconds: float | None = Field(
        description="How long its head message has waited at least (first seen at the head)."
    )
    checked_at: Timestamp

    @classmethod
    def of(cls, report: QueueReport) -> QueueOut:
        """The answer for one queue."""
        age = report.oldest_age
        return cls(
            name=report.name,
            depth=report.depth,
            consumers=report.consumers,
            oldest_age_seconds=None if age is None else round(age, 1),
            checked_at=report.checked_at,
        )


class QueuesOut(BaseModel):
    """The watched queues, by name."""

    items: list[QueueOut]


@api.route(
    "GET",
    "/health/runs",
    summary="Runs past their limit (hung or overlong), as live workers report them",
    responses={200: RunsOut, **READ_ERRORS},
)
def list_overdue_runs() -> Reply:
    """Every run past its limit, the longest-running first."""
    now = utcnow()
    return RunsOut(items=[RunOut.of(run, now) for run in overdue_runs(db_session(), now)]), 200


@api.route(
    "GET",
    "/health/queues",
    summary="Watched queues with their depth, consumers and oldest message's wait",
    responses={200: QueuesOut, **READ_ERRORS},
)
def list_queues() -> Reply:
    """Every watched queue as last checked, by name."""
    return QueuesOut(items=[QueueOut.of(q) for q in queue_reports(db_session())]), 200


def health_runs_context(db: Session) -> dict[str, Any]:
    """What the page's two sections show: ``health_runs`` and ``health_queues`` rows."""
    now = utcnow()
    runs = [
        {
            **RunOut.of(run, now).model_dump(),
            "elapsed": span(run.elapsed(now)),
            "limit": span(run.limit_seconds),
        }
        for run in overdue_runs(db, now)
    ]
    queues = [
        {
            **QueueOut.of(report).model_dump(),
            "oldest": None if report.oldest_age is None else span(report.oldest_age),
        }
        for report in queue_reports(db, now)
    ]
    return {"health_runs": runs, "health_queues": queues}
