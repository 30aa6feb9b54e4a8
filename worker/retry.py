"""Retries on the Celery side: capture an opted-in failure, send retries, record their outcome.

- At failure time (inside the failure handler's guard) :func:`retry_capture` seals the run's
  arguments with ``NOTIFIER_RETRY_KEY`` and notes its route (``delivery_info``), only for a
  task that opted in (``retryable=True`` or the app's ``notifier_retry_all_tasks``).
- The web records an admin's retry as ``pending`` and wakes a dispatcher through the
  delivery kick (``NOTIFIER_DELIVERY_KICK``, else beat's sweep); ``notifier.dispatch_deliveries``
  calls :func:`send_pending_retries`, which claims each pending retry once, opens its
  arguments and sends the task to its original queue under the retry's own task id. The web
  thus needs neither Celery nor the key.
- The retried run carries the :data:`RETRY_HEADER` header; its success or failure is written
  to its retry by the two handlers below (``install`` connects them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from notifier import ConfigurationError, Database, Settings, clip
from notifier.retry import (
    FAILED,
    SUCCEEDED,
    UNSENDABLE,
    PendingRetry,
    claim_pending,
    finish_retry,
    seal,
    unseal,
)

from .decorators import JobSpec
from .guard import guard
from .redaction import redact_text

logger = logging.getLogger("notifier.worker")

#: The message header a retried run carries (its value: the retry's task id).
RETRY_HEADER = "notifier_retry"


def retry_capture(task: Any, spec: JobSpec, args: Any, kwargs: Any) -> dict[str, Any] | None:
    """The route and sealed arguments of an opted-in task's failed run (None: not opted in).

    Without a usable key the run is still recorded, with the ``problem`` an admin then reads.
    """
    if not spec.retryable and not _all_tasks_retryable(task):
        return None
    delivery = getattr(getattr(task, "request", None), "delivery_info", None) or {}
    capture: dict[str, Any] = {
        "exchange": str(delivery.get("exchange") or ""),
        "routing_key": str(delivery.get("routing_key") or ""),
    }
    try:
        capture["payload"] = seal(list(args or ()), dict(kwargs or {}))
    except ConfigurationError as exc:
        logger.error("notifier: %s: %s", getattr(task, "name", "?"), exc)
        capture["problem"] = str(exc)
    except ValueError as exc:  # not JSON, or too large: said in the exception
        capture["problem"] = str(exc)
    return capture


def _all_tasks_retryable(task: Any) -> bool:
    conf = getattr(getattr(task, "app", None), "conf", None)
    return bool(conf.get("notifier_retry_all_tasks")) if conf is not None else False


def send_pending_retries(app: Any, database: Database) -> int:
    """Send every pending retry once, to its original queue; how many were sent."""
    with database.session_scope(immediate=True) as db:
        claimed = claim_pending(db)
    sent = 0
    for retry in claimed:
        try:
            args, kwargs = unseal(retry.payload)
            app.send_task(
                retry.task_name,
                args=args,
                kwargs=kwargs,
                task_id=retry.task_id,
                headers={RETRY_HEADER: retry.task_id},
                **_route(retry),
            )
            sent += 1
        except Exception as exc:
            logger.exception("notifier: retry %s could not be sent", retry.task_id)
            with database.session_scope() as db:
                finish_retry(db, retry.task_id, UNSENDABLE, f"not sent: {_describe(exc)}")
    return sent


def _route(retry: PendingRetry) -> Mapping[str, str]:
    """The original queue: by name, or its exchange and routing key when those differ."""
    if not retry.routing_key:
        return {}  # the task's own routing decides
    if retry.exchange and retry.exchange != retry.routing_key:
        return {"exchange": retry.exchange, "routing_key": retry.routing_key}
    return {"queue": retry.routing_key}


def _describe(exc: BaseException) -> str:
    return clip(redact_text(f"{type(exc).__name__}: {exc}"), 480)


def _retried(sender: Any) -> str | None:
    """The retry's task id when ``sender`` runs a retried run (one attribute read otherwise)."""
    request = getattr(sender, "request", None)
    marker = getattr(request, RETRY_HEADER, None)
    return str(marker) if marker else None


def _finish(app: Any, task_id: str, status: str, detail: str | None) -> None:
    # A retried run is rare (an admin asked for it): a short-lived engine, nothing cached.
    url = app.conf.get("notifier_database_url") or Settings.from_env().database_url
    database = Database(str(url))
    try:
        with database.session_scope() as db:
            finish_retry(db, task_id, status, detail)
    finally:
        database.dispose()


def on_retried_success(sender: Any = None, **_: Any) -> None:
    """``task_success``: a retried run succeeded; its retry says so."""
    task_id = _retried(sender)
    if task_id is None:
        return
    with guard("retry outcome", task_id=task_id):
        _finish(sender.app, task_id, SUCCEEDED, None)


def on_retried_failure(
    sender: Any = None, exception: BaseException | None = None, **_: Any
) -> None:
    """``task_failure``: a retried run failed again; its retry says how."""
    task_id = _retried(sender)
    if task_id is None:
        return
    with guard("retry outcome", task_id=task_id):
        detail = _describe(exception) if exception is not None else "failed"
        _finish(sender.app, task_id, FAILED, detail)
