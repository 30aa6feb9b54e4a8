"""Turn Celery facts (a task, its exception, its result) into the core's failure reports.

Each report carries a key derived from the task id and the kind of event, so the same
failure reported twice (Celery reports a hard time limit twice; a redelivered message
runs again) is recorded once. What the report means is decided by the task's job spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.exceptions import Ignore, Reject, Retry

from notifier import FailureKind, FailureReport, JobKind

from .decorators import (
    ANY_TASK,
    Failure,
    JobSpec,
    spec_of,
    task_arguments,
)
from .redaction import MESSAGE_MAX_CHARS, clip_text, clip_traceback, redact_text, safe_arguments

#: Control flow, not failures (as in sentry-sdk's CELERY_CONTROL_FLOW_EXCEPTIONS).
CONTROL_FLOW_EXCEPTIONS = (Retry, Ignore, Reject)


def exception_class(exc: BaseException) -> str:
    """``module.QualName`` of an exception's class: stable across processes and hosts."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def is_notifiable(task: Any, exc: BaseException) -> bool:
    """False for control flow (Retry, Ignore, Reject) and for exceptions in ``task.throws``."""
    if isinstance(exc, CONTROL_FLOW_EXCEPTIONS):
        return False
    throws = tuple(getattr(task, "throws", ()) or ())
    return not (throws and isinstance(exc, throws))


def dedup_key(task_id: str, event: str) -> str:
    """The key of one event of one task run (the notification's dedup key)."""
    return f"celery:{task_id}:{event}"


def failure_report(
    task: Any,
    *,
    task_id: str,
    exc: BaseException,
    traceback_text: str,
    args: Any,
    kwargs: Any,
    attempts: int,
    all_tasks: bool,
    kind: str = "failure",
) -> FailureReport | None:
    """The report of a task's final failure, or None when it should not notify."""
    if not is_notifiable(task, exc):
        return None
    spec = spec_of(task) or (ANY_TASK if all_tasks else None)
    if spec is None:
        return None
    arguments = task_arguments(task, args, kwargs)
    failure = Failure(
        key=dedup_key(task_id, kind),
        event=kind,
        kind=_failure_kind(exc),
        task_name=_task_name(task),
        task_id=task_id,
        arguments=arguments,
        safe_arguments=safe_arguments(arguments),
        attempts=attempts,
        exception_class=exception_class(exc),
        short_exception=type(exc).__name__,
        message=clip_text(redact_text(_describe_exception(exc)), MESSAGE_MAX_CHARS),
        traceback=clip_traceback(redact_text(traceback_text or "")),
    )
    return spec.failure_report(failure)


def returned_reports(
    task: Any,
    *,
    task_id: str,
    result: Any,
    args: Any,
    kwargs: Any,
    default_threshold: Callable[[], int],
    spec: JobSpec | None = None,
) -> list[FailureReport]:
    """Reports for a run that returned: too many row errors, or orders with unknown products."""
    spec = spec or spec_of(task)
    if spec is None or not spec.wants_result(result, default_threshold):
        return []
    task_name = _task_name(task)
    arguments = task_arguments(task, args, kwargs)
    base: dict[str, Any] = {
        "job": spec.job,
        "task_name": task_name,
        "task_id": task_id,
        "arguments": safe_arguments(arguments),
        **spec.locate(arguments, task_id),
    }
    reports = []
    row_errors = spec.row_errors(result, default_threshold)
    if row_errors is not None:
        count, reasons = row_errors
        sample = "; ".join(clip_text(_describe(r), 200) for r in reasons[:5])
        message = f"{count} rows failed" + (f": {sample}" if sample else "")
        reports.append(
            FailureReport(
                **base,
                key=dedup_key(task_id, "row_errors"),
                kind=FailureKind.ROW_ERRORS,
                event="row_errors",
                message=message,
                error_count=count,
                errors=safe_arguments(list(reasons[:50])),
            )
        )
    for position, exception in enumerate(spec.unmatched_orders(result)):
        number = clip_text(str(exception.get("order_number", "?")), 100)
        # The position keeps two exceptions with the same (or no) number apart, and is stable
        # when the same result is reported again.
        event = f"order_exception:{position}:{number}"
        reports.append(
            FailureReport(
                **{**base, "job": JobKind.SYNC},
                key=dedup_key(task_id, event),
                kind=FailureKind.ORDER_EXCEPTION,
                event="order_exception",
                order_number=number,
                unmatched_products=[str(p) for p in exception.get("unmatched_products") or []],
            )
        )
    return reports


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", None) or "unknown")


def _failure_kind(exc: BaseException) -> FailureKind:
    if isinstance(exc, WorkerLostError):
        return FailureKind.WORKER_LOST
    if isinstance(exc, TimeLimitExceeded | SoftTimeLimitExceeded):
        return FailureKind.TIME_LIMIT
    return FailureKind.EXCEPTION


def _describe_exception(exc: BaseException) -> str:
    """What an admin reads: for a lost pool process, what happened before Celery's words.

    Celery's text alone can say "exitcode 0" for a process the kernel killed, because the
    pool may reap it before it learns the signal.
    """
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, WorkerLostError):
        return (
            "The worker process running this task died before the task finished: it was "
            "killed (for example SIGKILL from the out-of-memory killer) or crashed, and the "
            f"pool replaced it. Celery reported {text}"
        )
    return text


def _describe(error: Any) -> str:
    """One row error as text: ``line 7: price is not a number`` for line/reason mappings."""
    if isinstance(error, Mapping) and "reason" in error:
        line = error.get("line")
        return f"line {line}: {error['reason']}" if line is not None else str(error["reason"])
    return str(error)
