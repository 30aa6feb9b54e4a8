"""Turn Celery facts (a task, its exception, its result) into the core's failure reports.

Each report carries a key derived from the task id and the kind of event, so the same
failure reported twice (Celery reports a hard time limit twice; a redelivered message
runs again) is recorded once. What the report means is decided by the task's job spec.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable, Mapping
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.exceptions import Ignore, Reject, Retry

from notifier import (
    MESSAGE_CHARS,
    TRACEBACK_CHARS,
    FailureKind,
    FailureReport,
    JobKind,
    clip,
    storable_text,
)

from .decorators import (
    ANY_TASK,
    Failure,
    JobSpec,
    spec_of,
    task_arguments,
)
from .ownership import ownership
from .redaction import redact_text, safe_arguments
from .retry import retry_capture

logger = logging.getLogger("notifier.worker")

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
    owner, runbook = ownership(task, spec, _task_name(task))
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
        message=clip(redact_text(_describe_exception(exc)), MESSAGE_CHARS),
        traceback=clip(redact_text(storable_text(traceback_text)), TRACEBACK_CHARS, keep_end=True),
        owner=owner,
        runbook=runbook,
        retry=retry_capture(task, spec, args, kwargs),
    )
    try:  # the spec reads the task's own arguments (a callable, a str() of a host object)
        return spec.failure_report(failure)
    except Exception:
        logger.exception(
            "notifier: %s: locating the failure failed; recorded unlocated", failure.key
        )
        return FailureReport(
            key=failure.key,
            job=spec.job,
            kind=failure.kind,
            event=failure.event,
            task_name=failure.task_name,
            task_id=failure.task_id,
            job_id=failure.task_id,
            store_name="unknown store",
            attempts=failure.attempts,
            exception_class=failure.exception_class,
            message=failure.message,
            arguments=failure.safe_arguments,
            traceback=failure.traceback,
            fingerprint=f"celery:{failure.task_name}:{failure.exception_class}",
            alert_type=spec.alert_type,
            owner=owner,
            runbook=runbook,
            retry=failure.retry,
        )


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
    owner, runbook = ownership(task, spec, task_name)
    base: dict[str, Any] = {
        "job": spec.job,
        "task_name": task_name,
        "task_id": task_id,
        "arguments": safe_arguments(arguments),
        **_locate(spec, arguments, task_id),
        "owner": owner,
        "runbook": runbook,
    }
    reports = []
    row_errors = spec.row_errors(result, default_threshold)
    if row_errors is not None:
        count, reasons = row_errors
        sample = "; ".join(clip(_describe(r), 200) for r in reasons[:5])
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
        number = clip(exception.get("order_number", "?"), 100)
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
                # Made text by the report itself, which never raises on a hostile item.
                unmatched_products=list(exception.get("unmatched_products") or []),
            )
        )
    return reports


def _locate(spec: JobSpec, arguments: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """The spec's store and job ids, or none when finding them raises (a host callable)."""
    try:
        return spec.locate(arguments, task_id)
    except Exception:
        logger.exception(
            "notifier: task %s: locating its store failed; recorded unlocated", task_id
        )
        return {"store_id": None, "store_name": "unknown store", "job_id": task_id}


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", None) or "unknown")


def _failure_kind(exc: BaseException) -> FailureKind:
    if isinstance(exc, WorkerLostError):
        return FailureKind.WORKER_LOST
    if isinstance(exc, TimeLimitExceeded | SoftTimeLimitExceeded):
        return FailureKind.TIME_LIMIT
    return FailureKind.EXCEPTION


def _describe_exception(exc: BaseException) -> str:
    """What an admin reads: for a lost pool process, how it ended before Celery's words."""
    text = f"{type(exc).__name__}: {storable_text(exc)}"
    if isinstance(exc, WorkerLostError):
        return f"The worker process running this task {_how_it_ended(text)} Celery reported {text}"
    return text


#: What a signal that ended a pool process in the middle of a task usually means.
_SIGNAL_MEANINGS = {
    "SIGKILL": "usually the kernel's out-of-memory killer (see `dmesg` or the container's "
    "OOMKilled status) or a hard kill (kill -9, a container stopped past its grace period)",
    "SIGTERM": "usually a shutdown or restart (a deploy, the container or host stopping) "
    "that did not wait for the task, or someone terminating the process",
    "SIGINT": "an interrupt (Ctrl-C) sent to the process",
    "SIGHUP": "the terminal or session that started the worker went away",
    "SIGSEGV": "a crash: a segmentation fault, usually in a C extension or native library",
    "SIGABRT": "a crash: native code called abort() (a failed assertion, heap corruption)",
    "SIGBUS": "a crash: a bus error (a memory-mapped file shrank under it, or bad memory)",
    "SIGFPE": "a crash: an arithmetic fault in native code",
    "SIGILL": "a crash: an illegal instruction in native code",
    "SIGXCPU": "its CPU time limit (ulimit -t) ran out",
}
# billiard says "signal 9 (SIGKILL)" or "exitcode 1"; "exitcode 0" when its supervisor
# cleaned the dead process up before it learned that the process ran this task.
_ENDED = re.compile(r"\bsignal (\d+)|\bexitcode (-?\d+)")


def _how_it_ended(text: str) -> str:
    """How a pool process ended, from billiard's text, and what that usually means."""
    found = _ENDED.search(text)
    if found is not None and found.group(1):
        number = int(found.group(1))
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        meaning = _SIGNAL_MEANINGS.get(name, "sent by another process or the kernel")
        return (
            f"was ended by {name} (signal {number}) before the task finished: {meaning}. "
            "The pool replaced it."
        )
    if found is None:
        return "ended before the task finished."
    if found.group(2) != "0":
        return (
            f"exited with code {found.group(2)} before the task finished: code in the task or "
            "a library ended the process (os._exit, a fatal error in a C extension). The pool "
            "replaced it."
        )
    return (
        "died before the task finished, and the pool did not learn how (a process does not "
        "end by itself with code 0 in the middle of a task): most often it was killed with "
        "SIGKILL (signal 9) by the kernel's out-of-memory killer or a hard kill (kill -9, a "
        "container stopped past its grace period). The pool replaced it."
    )


def _describe(error: Any) -> str:
    """One row error as text: ``line 7: price is not a number`` for line/reason mappings."""
    if isinstance(error, Mapping) and "reason" in error:
        line = error.get("line")
        reason = storable_text(error["reason"])
        return f"line {storable_text(line)}: {reason}" if line is not None else reason
    return storable_text(error)
