"""Retention: remove read notifications and resolved alerts older than a limit.

Only what nobody needs to act on goes: an unread notification or an open alert stays, however
old. Rows are deleted in bounded batches, each its own short transaction, so a prune of
millions never holds a long lock nor a huge transaction (the web and the worker keep writing
in between). A dry run counts what would go and deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from .db import Database
from .models import AdminNotification, FailedRun, PlatformAlert
from .retry import prune_retries
from .types import utcnow

#: Rows deleted per transaction.
BATCH = 5_000


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed (or, dry, would remove), and the cut-off it used."""

    notifications: int
    alerts: int
    cutoff: datetime
    dry_run: bool
    #: Failed runs kept for a retry (their sealed arguments) and retries, older than the cutoff.
    retries: int = 0


def _targets(cutoff: datetime) -> list[tuple[Any, list[Any]]]:
    return [
        (
            AdminNotification,
            [AdminNotification.is_read.is_(True), AdminNotification.created_at < cutoff],
        ),
        (PlatformAlert, [PlatformAlert.is_resolved.is_(True), PlatformAlert.resolved_at < cutoff]),
    ]


def prune(
    database: Database,
    older_than: timedelta,
    *,
    dry_run: bool,
    batch: int = BATCH,
    now: datetime | None = None,
) -> PruneReport:
    """Delete read notifications and resolved alerts older than ``older_than`` (or count them)."""
    cutoff = (now or utcnow()) - older_than
    removed: list[int] = []
    for entity, conditions in _targets(cutoff):
        if dry_run:
            with database.session_scope() as db:
                count = db.scalar(select(func.count()).select_from(entity).where(*conditions))
            removed.append(int(count or 0))
            continue
        total = 0
        while True:
            with database.session_scope() as db:  # one short transaction per batch
                ids = select(entity.id).where(*conditions).limit(batch).scalar_subquery()
                result = db.execute(
                    delete(entity)
                    .where(entity.id.in_(ids))
                    .execution_options(synchronize_session=False)
                )
            done = int(getattr(result, "rowcount", 0) or 0)
            total += done
            if done < batch:
                break
        removed.append(total)
    return PruneReport(
        removed[0], removed[1], cutoff, dry_run, _prune_retries(database, cutoff, dry_run, batch)
    )


def _prune_retries(database: Database, cutoff: datetime, dry_run: bool, batch: int) -> int:
    """Failed runs (sealed arguments never outlive the retention) and the retries' audit."""
    if dry_run:
        with database.session_scope() as db:
            return int(
                db.scalar(
                    select(func.count())
                    .select_from(FailedRun)
                    .where(FailedRun.occurred_at < cutoff)
                )
                or 0
            )
    total = 0
    while True:
        with database.session_scope() as db:
            done = prune_retries(db, cutoff, batch=batch)
        total += done
        if done < batch:
            return total


__all__ = ["BATCH", "PruneReport", "prune"]
