"""Retry a failed task from its notification or alert (admins only; CSRF like every write).

The web writes the retry (``pending``, with its new task id) and commits; the delivery kick
then wakes a worker's dispatcher, which sends it (``notifier.worker.retry``). The web never
holds the arguments' key nor a Celery app.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from notifier import admin_notification_service, platform_alert_service
from notifier.models import AdminUser
from notifier.retry import (
    NotRetryableError,
    RetryBatch,
    RetryInFlightError,
    alert_summary,
    retry_alert,
    retry_notification,
)

from ..auth import current_admin
from ..state import db_session
from .blueprint import api
from .errors import ApiError
from .operations import READ_ERRORS, WRITE_ERRORS, Reply, found
from .schemas import ErrorOut, Output, Timestamp


class RetryOut(Output):
    """One retry: who asked and when, the run it retries, the new task id and its outcome."""

    task_id: str
    failed_task_id: str
    task_name: str
    requested_by: str
    requested_at: Timestamp
    status: str
    sent_at: Timestamp | None
    finished_at: Timestamp | None
    detail: str | None


class RetryBatchOut(BaseModel):
    """The retries a request wrote, the runs skipped as busy, and those left past the bound."""

    retries: list[RetryOut]
    busy: int
    remaining: int
    limit: int


class RetrySummaryOut(BaseModel):
    """An alert's runs that can be retried, those in flight, why not (if so), latest retries."""

    retryable: int
    busy: int
    problem: str | None
    retries: list[RetryOut]


_ERRORS = {404: ErrorOut, 409: ErrorOut, **WRITE_ERRORS}


def _admin() -> AdminUser:
    admin = current_admin()
    assert admin is not None  # the blueprint guard let only admins in
    return admin


def _sent(ask: Callable[[], RetryBatch]) -> Reply:
    """Ask for the retries, commit (the delivery kick fires after it) and say what was asked."""
    try:
        batch = ask()
    except (NotRetryableError, RetryInFlightError) as exc:
        code = "retry_in_flight" if isinstance(exc, RetryInFlightError) else "not_retryable"
        raise ApiError(409, str(exc), code=code) from None
    db_session().commit()
    out = RetryBatchOut(
        retries=[RetryOut.model_validate(retry) for retry in batch.retries],
        busy=batch.busy,
        remaining=batch.remaining,
        limit=batch.limit,
    )
    return out, 202


@api.route(
    "POST",
    "/{notification_id}/retry",
    summary="Retry the failed task a notification is about, with its original arguments "
    "(tasks that opted in only; 409 when a retry is in flight)",
    responses={202: RetryBatchOut, **_ERRORS},
)
def retry_notification_task(notification_id: int) -> Reply:
    """Ask a worker to send the notification's failed task again."""
    db = db_session()
    notification = found(
        admin_notification_service.get_notification(db, notification_id),
        "notification",
        notification_id,
    )
    return _sent(lambda: retry_notification(db, notification, _admin()))


@api.route(
    "POST",
    "/alerts/{alert_id}/retry",
    summary="Retry each failed run of an alert once (at most 100 per request, newest first; "
    "tasks that opted in only)",
    responses={202: RetryBatchOut, **_ERRORS},
)
def retry_alert_tasks(alert_id: int) -> Reply:
    """Ask a worker to send every failed run of the alert not retried yet."""
    db = db_session()
    alert = found(platform_alert_service.get_alert(db, alert_id), "platform alert", alert_id)
    return _sent(lambda: retry_alert(db, alert, _admin()))


@api.route(
    "GET",
    "/alerts/{alert_id}/retries",
    summary="An alert's failed runs that can be retried, those in flight, and its latest retries",
    responses={200: RetrySummaryOut, 404: ErrorOut, **READ_ERRORS},
)
def alert_retries(alert_id: int) -> Reply:
    """The alert's retry state."""
    db = db_session()
    alert = found(platform_alert_service.get_alert(db, alert_id), "platform alert", alert_id)
    summary = alert_summary(db, alert)
    out = RetrySummaryOut(
        retryable=summary.retryable,
        busy=summary.busy,
        problem=summary.problem,
        retries=[RetryOut.model_validate(retry) for retry in summary.retries],
    )
    return out, 200
