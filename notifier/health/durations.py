"""Observed run durations per task, shared by every worker and kept across restarts.

A hung run's limit may be a multiple of its task's p99 duration. Each worker's health loop
sees the durations of the runs it watched; in its heartbeat transaction (every few
seconds, not per task) it adds the new ones to the task's row, which keeps the latest
:data:`KEEP` of them and their p99, and reads back the p99 of the tasks it runs now. So a
restarted worker keeps the figure, and all workers share one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import TaskDurations
from ..text import clip
from ..types import utcnow

__all__ = ["KEEP", "MIN_SAMPLES", "p99", "record_durations", "shared_p99s"]

#: Durations kept per task (the latest), and the fewest that make a p99 worth using.
KEEP = 500
MIN_SAMPLES = 20


def p99(samples: Iterable[float]) -> float | None:
    """The 99th percentile of ``samples``; None with fewer than :data:`MIN_SAMPLES`."""
    ordered = sorted(samples)
    if len(ordered) < MIN_SAMPLES:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _locked(db: Session, name: str) -> TaskDurations:
    """The task's row, locked until the transaction ends (created when absent)."""
    row = db.get(TaskDurations, name, with_for_update=True)
    if row is not None:
        return row
    try:
        with db.begin_nested():
            row = TaskDurations(task_name=name, durations=[], p99_seconds=None, samples=0)
            db.add(row)
        return row
    except IntegrityError:  # another worker created it first: add to theirs
        row = db.get(TaskDurations, name, with_for_update=True, populate_existing=True)
        if row is None:  # pragma: no cover - created and deleted in between
            raise
        return row


def record_durations(
    db: Session, observed: Mapping[str, Sequence[float]], *, now: datetime | None = None
) -> None:
    """Add the durations (seconds) ``observed`` per task name to what the store keeps."""
    now = now or utcnow()
    for name in sorted(observed):  # one order in every worker: no lock cycles
        new = [round(max(0.0, float(seconds)), 3) for seconds in observed[name]]
        if not new:
            continue
        row = _locked(db, clip(name, 200))
        kept = [*(row.durations or []), *new][-KEEP:]
        row.durations = kept  # a new list: the JSON column sees the change
        row.p99_seconds = p99(kept)
        row.samples = len(kept)
        row.updated_at = now
    db.flush()


def shared_p99s(db: Session, names: Iterable[str]) -> dict[str, float]:
    """The stored p99 of each of ``names`` that has one, by task name."""
    wanted = {clip(name, 200) for name in names}
    if not wanted:
        return {}
    rows = db.execute(
        select(TaskDurations.task_name, TaskDurations.p99_seconds).where(
            TaskDurations.task_name.in_(wanted), TaskDurations.p99_seconds.is_not(None)
        )
    )
    return {name: float(value) for name, value in rows if value is not None}
