"""Failed runs kept for a retry, the retries admins ask for, and their outcome (the audit).

A retry goes ``pending`` (asked for; written by the web with its new Celery task id) ->
``sent`` (claimed by a worker, which opens the arguments and sends the task) -> ``succeeded``
or ``failed`` (the retried run's own outcome), or ``unsendable`` when the worker could not
send it. A run has one retry in flight at a time: asking claims the run with one conditional
UPDATE, so two requests at once (a double click, two admins) send one task.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ..errors import NotifierError
from ..models import AdminNotification, AdminUser, FailedRun, PlatformAlert, TaskRetry
from ..outbox import mark_queued
from ..text import clip
from ..types import utcnow
from .payloads import rotate

PENDING = "pending"
SENT = "sent"
SUCCEEDED = "succeeded"
FAILED = "failed"
UNSENDABLE = "unsendable"
#: A run whose latest retry is in one of these is not retried again.
_BUSY = (PENDING, SENT, SUCCEEDED)
#: Failed runs one "Retry all" sends at most (the rest stay for the next click).
RETRY_ALL_LIMIT = 100
#: Retries a summary lists, newest first.
SHOWN_RETRIES = 5


class NotRetryableError(NotifierError):
    """The failure cannot be retried: its task did not opt in, or its arguments were not kept."""


class RetryInFlightError(NotifierError):
    """A retry of this run is pending or sent, or one already succeeded."""


@dataclass(frozen=True)
class RetryBatch:
    """What asking for retries did: the retries written, and the runs left as they were."""

    retries: list[TaskRetry]
    busy: int = 0
    remaining: int = 0
    limit: int = RETRY_ALL_LIMIT


@dataclass(frozen=True)
class RetrySummary:
    """A notification's or an alert's retry state, for the page and the API."""

    retryable: int = 0
    busy: int = 0
    problem: str | None = None
    retries: list[TaskRetry] = field(default_factory=list)


@dataclass(frozen=True)
class PendingRetry:
    """A retry a worker claimed: what it sends, with the arguments still sealed."""

    task_id: str
    task_name: str
    payload: str
    exchange: str
    routing_key: str


# -- recording (the failure recorder, in its transaction) ----------------------------------


def keep_failed_runs(
    db: Session, reports: Sequence[Any], alerts: Sequence[PlatformAlert | None]
) -> None:
    """Keep the route and sealed arguments of each report that carries a retry capture.

    ``reports`` are fresh ``FailureReport`` s and ``alerts`` the alert each counted on.
    """
    now = utcnow()
    for report, alert in zip(reports, alerts, strict=True):
        capture = report.retry
        if not capture:
            continue
        db.add(
            FailedRun(
                failure_key=report.key,
                task_id=report.task_id,
                task_name=report.task_name,
                exchange=clip(str(capture.get("exchange") or ""), 255),
                routing_key=clip(str(capture.get("routing_key") or ""), 255),
                payload=capture.get("payload") or None,
                problem=clip(str(capture["problem"]), 500) if capture.get("problem") else None,
                alert_id=alert.id if alert is not None else None,
                storm_fingerprint=report.storm_fingerprint,
                occurred_at=now,
            )
        )


# -- asking (the web) ---------------------------------------------------------------------


def _alert_runs(alert: PlatformAlert) -> Any:
    """The runs of an alert: counted on it, or (a grouped alert) on an open alert of its family."""
    open_alerts = select(PlatformAlert.id).where(PlatformAlert.is_resolved.is_(False))
    return or_(
        FailedRun.alert_id == alert.id,
        and_(FailedRun.storm_fingerprint == alert.fingerprint, FailedRun.alert_id.in_(open_alerts)),
    )


def _refuse(run: FailedRun | None, what: str) -> FailedRun:
    if run is None:
        raise NotRetryableError(_refuse_text(what))
    if run.payload is None:
        raise NotRetryableError(
            f"this {what}'s run cannot be retried: {run.problem or 'no arguments kept'}"
        )
    return run


def _ask(db: Session, run: FailedRun, admin: AdminUser, *, again: bool) -> TaskRetry | None:
    """Claim ``run`` for a new retry (None when it is busy) and write the retry."""
    new_id = str(uuid.uuid4())
    state: Any = FailedRun.retry_status.is_(None)
    if again:
        state = or_(state, FailedRun.retry_status.not_in(_BUSY))
    claimed = db.execute(
        update(FailedRun)
        .where(FailedRun.id == run.id, FailedRun.payload.is_not(None), state)
        .values(retry_task_id=new_id, retry_status=PENDING)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    retry = TaskRetry(
        task_id=new_id,
        failed_run_id=run.id,
        failed_task_id=run.task_id,
        task_name=run.task_name,
        requested_by_user_id=admin.id,
        requested_by=admin.email,
        requested_at=utcnow(),
        status=PENDING,
    )
    db.add(retry)
    db.flush()
    mark_queued(db, 1)  # wakes a dispatcher after the commit, which sends pending retries
    return retry


def retry_notification(
    db: Session, notification: AdminNotification, admin: AdminUser
) -> RetryBatch:
    """Retry the failed run a notification is about; raises when it cannot or is busy."""
    run = None
    if notification.dedup_key:
        run = db.scalar(select(FailedRun).where(FailedRun.failure_key == notification.dedup_key))
    run = _refuse(run, "notification")
    retry = _ask(db, run, admin, again=True)
    if retry is None:
        raise RetryInFlightError(
            f"a retry of this run is already {run.retry_status} (task {run.retry_task_id})"
        )
    return RetryBatch([retry])


def retry_alert(
    db: Session, alert: PlatformAlert, admin: AdminUser, *, limit: int = RETRY_ALL_LIMIT
) -> RetryBatch:
    """Retry each failed run of an alert never retried yet, newest first, at most ``limit``."""
    runs = list(
        db.scalars(
            select(FailedRun)
            .where(
                _alert_runs(alert), FailedRun.payload.is_not(None), FailedRun.retry_status.is_(None)
            )
            .order_by(FailedRun.occurred_at.desc(), FailedRun.id.desc())
            .limit(limit + 1)
        )
    )
    if not runs:
        summary = alert_summary(db, alert)
        if summary.busy:
            raise RetryInFlightError(
                "every failed run of this alert is already retried or in flight"
            )
        raise NotRetryableError(summary.problem or _refuse_text("alert"))
    retries, busy = [], 0
    for run in runs[:limit]:
        retry = _ask(db, run, admin, again=False)
        if retry is None:
            busy += 1
        else:
            retries.append(retry)
    if not retries:
        raise RetryInFlightError("every failed run of this alert is already retried or in flight")
    remaining = 0
    if len(runs) > limit:
        remaining = int(
            db.scalar(
                select(func.count())
                .select_from(FailedRun)
                .where(
                    _alert_runs(alert),
                    FailedRun.payload.is_not(None),
                    FailedRun.retry_status.is_(None),
                )
            )
            or 0
        )
    return RetryBatch(retries, busy=busy, remaining=remaining, limit=limit)


def _refuse_text(what: str) -> str:
    return (
        f"this {what}'s task did not opt in to retries (@import_job(..., retryable=True) "
        "or notifier_retry_all_tasks), so its arguments were not kept"
    )


# -- showing (pages and API) ---------------------------------------------------------------


def _recent_retries(db: Session, run_ids: Any) -> list[TaskRetry]:
    return list(
        db.scalars(
            select(TaskRetry)
            .where(TaskRetry.failed_run_id.in_(run_ids))
            .order_by(TaskRetry.requested_at.desc(), TaskRetry.id.desc())
            .limit(SHOWN_RETRIES)
        )
    )


def alert_summary(db: Session, alert: PlatformAlert) -> RetrySummary:
    """How many runs of an alert can be retried, how many are busy, and its latest retries."""
    runs = _alert_runs(alert)
    counts = db.execute(
        select(
            func.count().filter(FailedRun.payload.is_not(None), FailedRun.retry_status.is_(None)),
            func.count().filter(FailedRun.retry_status.in_((PENDING, SENT))),
            func.max(FailedRun.problem),
        ).where(runs)
    ).one()
    retries = _recent_retries(db, select(FailedRun.id).where(runs).scalar_subquery())
    return RetrySummary(int(counts[0] or 0), int(counts[1] or 0), counts[2], retries)


def alert_summaries(db: Session, alerts: Sequence[PlatformAlert]) -> dict[int, RetrySummary]:
    """:func:`alert_summary` of each alert that has failed runs, by alert id."""
    if not alerts or db.scalar(select(FailedRun.id).limit(1)) is None:
        return {}  # the usual case: nothing opted in
    found = {alert.id: alert_summary(db, alert) for alert in alerts}
    return {
        key: value
        for key, value in found.items()
        if value.retryable or value.retries or value.problem
    }


def notification_summaries(
    db: Session, notifications: Sequence[AdminNotification]
) -> dict[int, RetrySummary]:
    """Each notification's run: retryable or not (and why), and its latest retries."""
    by_key = {n.dedup_key: n.id for n in notifications if n.dedup_key}
    if not by_key:
        return {}
    runs = list(db.scalars(select(FailedRun).where(FailedRun.failure_key.in_(by_key))))
    summaries = {}
    for run in runs:
        retryable = run.payload is not None and run.retry_status not in _BUSY
        busy = run.retry_status in (PENDING, SENT)
        summaries[by_key[run.failure_key]] = RetrySummary(
            int(retryable), int(busy), run.problem, _recent_retries(db, [run.id])
        )
    return summaries


# -- sending and outcome (the worker) ------------------------------------------------------


def claim_pending(db: Session, *, limit: int = 50) -> list[PendingRetry]:
    """Claim pending retries for sending (each by exactly one caller), marking them sent.

    Commit before sending: a retry is sent at most once; one whose send then fails is
    marked with :func:`finish_retry` (``unsendable``).
    """
    rows = db.execute(
        select(TaskRetry.id, TaskRetry.task_id, FailedRun)
        .join(FailedRun, FailedRun.id == TaskRetry.failed_run_id)
        .where(TaskRetry.status == PENDING)
        .order_by(TaskRetry.id)
        .limit(limit)
    ).all()
    now = utcnow()
    claimed = []
    for retry_id, task_id, run in rows:
        taken = db.execute(
            update(TaskRetry)
            .where(TaskRetry.id == retry_id, TaskRetry.status == PENDING)
            .values(status=SENT, sent_at=now)
            .execution_options(synchronize_session=False)
        )
        if not getattr(taken, "rowcount", 0) or run.payload is None:
            continue
        _set_run(db, task_id, SENT)
        claimed.append(
            PendingRetry(task_id, run.task_name, run.payload, run.exchange, run.routing_key)
        )
    return claimed


def _set_run(db: Session, task_id: str, status: str) -> None:
    db.execute(
        update(FailedRun)
        .where(FailedRun.retry_task_id == task_id)
        .values(retry_status=status)
        .execution_options(synchronize_session=False)
    )


def finish_retry(db: Session, task_id: str, status: str, detail: str | None = None) -> int | None:
    """Record a retry's outcome; returns the alert id of its run (None: not a retry in flight).

    ``status`` is ``succeeded``, ``failed`` or ``unsendable``.
    """
    done = db.execute(
        update(TaskRetry)
        .where(TaskRetry.task_id == task_id, TaskRetry.status.in_((PENDING, SENT)))
        .values(status=status, finished_at=utcnow(), detail=clip(detail, 500) if detail else None)
        .execution_options(synchronize_session=False)
    )
    if not getattr(done, "rowcount", 0):
        return None
    _set_run(db, task_id, status)
    return db.scalar(select(FailedRun.alert_id).where(FailedRun.retry_task_id == task_id))


# -- key rotation ----------------------------------------------------------------------------


def reseal_runs(db: Session, keys: str | None = None) -> int:
    """Seal every kept payload again with the first key, so older keys can be dropped."""
    runs = db.scalars(select(FailedRun).where(FailedRun.payload.is_not(None)))
    count = 0
    for run in runs:
        assert run.payload is not None
        run.payload = rotate(run.payload, keys)
        count += 1
    return count


# -- retention -----------------------------------------------------------------------------


def prune_retries(db: Session, cutoff: datetime, *, batch: int) -> int:
    """Delete at most ``batch`` failed runs, then retries, older than ``cutoff``; how many."""
    removed = 0
    for entity, moment in ((FailedRun, FailedRun.occurred_at), (TaskRetry, TaskRetry.requested_at)):
        ids = select(entity.id).where(moment < cutoff).limit(batch).scalar_subquery()
        result = db.execute(
            delete(entity).where(entity.id.in_(ids)).execution_options(synchronize_session=False)
        )
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
