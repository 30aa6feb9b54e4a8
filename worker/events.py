"""Turn Celery facts (a task, its exception, its result) into plain, JSON-safe events.

An event says which core service to call with which arguments, which platform alert to
count, and carries a dedup key derived from the task id and the kind of event, so the same
failure reported twice is recorded once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.exceptions import Ignore, Reject, Retry

from notifier import AlertType, Severity
from notifier.validation import METADATA_MAX_BYTES

from .decorators import JobSpec, spec_of, task_arguments
from .redaction import (
    MESSAGE_MAX_CHARS,
    clip_text,
    clip_traceback,
    redact_text,
    safe_arguments,
)

#: Control flow, not failures (as in sentry-sdk's CELERY_CONTROL_FLOW_EXCEPTIONS).
CONTROL_FLOW_EXCEPTIONS = (Retry, Ignore, Reject)
# What the notify_* services add to our metadata (store name, job id, an error message of at
# most MESSAGE_MAX_CHARS characters, up to 4 UTF-8 bytes each) must fit beside it.
_METADATA_BUDGET = METADATA_MAX_BYTES - 6 * 1024
_FINGERPRINT_MAX = 255
#: The keyword under which each service takes extra metadata.
_METADATA_PARAM = {
    "notify_import_failure": "extra",
    "notify_order_sync_failure": "extra",
    "notify_critical_error": "details",
    "create_notification": "metadata",
}


@dataclass(frozen=True)
class Event:
    """One thing to record: a service call, maybe an alert to count, and its dedup key."""

    key: str
    action: str
    params: dict[str, Any]
    alert: dict[str, Any] | None
    occurred_at: float

    def to_json(self) -> str:
        """The event as one JSON document."""
        document = {
            "key": self.key,
            "action": self.action,
            "params": self.params,
            "alert": self.alert,
            "occurred_at": self.occurred_at,
        }
        return json.dumps(document, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> Event:
        """Read an event written by :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            key=str(data["key"]),
            action=str(data["action"]),
            params=dict(data["params"]),
            alert=None if data["alert"] is None else dict(data["alert"]),
            occurred_at=float(data["occurred_at"]),
        )


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


def failure_event(
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
) -> Event | None:
    """The event for a task's final failure, or None when it should not notify."""
    if not is_notifiable(task, exc):
        return None
    spec = spec_of(task)
    if spec is None and not all_tasks:
        return None
    task_name = str(getattr(task, "name", None) or "unknown")
    arguments = task_arguments(task, args, kwargs)
    store_id, store_name, job_id = _store_and_job(spec, arguments, task_id)
    exc_class = exception_class(exc)
    message = clip_text(redact_text(f"{type(exc).__name__}: {exc}"), MESSAGE_MAX_CHARS)

    fingerprint = f"celery:{task_name}:{exc_class}"
    if spec is not None and spec.kind == "sync":
        fingerprint += f":store={store_id}"
    fingerprint = _bounded(fingerprint)
    details = _fit(
        {
            "event": kind,
            "task_name": task_name,
            "task_id": task_id,
            "exception_class": exc_class,
            "attempts": attempts,
            "arguments": safe_arguments(arguments),
            "traceback": clip_traceback(redact_text(traceback_text or "")),
            "alert_fingerprint": fingerprint,
        }
    )
    alert_type, severity = _alert_kind(spec, exc)
    alert = {
        "alert_type": alert_type.value,
        "severity": severity.value,
        "title": clip_text(f"{task_name} failed: {type(exc).__name__}", 200),
        "fingerprint": fingerprint,
        "description": message,
        "affected_stores": [store_id] if store_id is not None else [],
        "affected_systems": ["celery"],
        "metadata": {"task_name": task_name, "exception_class": exc_class},
    }
    action, params = _failure_call(spec, task_name, exc, store_id, store_name, job_id, message)
    params[_METADATA_PARAM[action]] = details
    return Event(dedup_key(task_id, kind), action, params, alert, time.time())


def returned_events(
    task: Any, *, task_id: str, result: Any, args: Any, kwargs: Any, default_threshold: int
) -> list[Event]:
    """Events for a run that returned: too many row errors, or orders with unknown products."""
    spec = spec_of(task)
    if spec is None or spec.kind == "generic":
        return []
    task_name = str(getattr(task, "name", None) or "unknown")
    arguments = task_arguments(task, args, kwargs)
    store_id, store_name, job_id = _store_and_job(spec, arguments, task_id)
    base = {"task_name": task_name, "task_id": task_id, "arguments": safe_arguments(arguments)}
    if spec.kind == "import":
        count, reasons = error_count(result)
        threshold = spec.error_threshold if spec.error_threshold is not None else default_threshold
        if count is None or count < threshold:
            return []
        sample = "; ".join(clip_text(_describe(r), 200) for r in reasons[:5])
        message = f"{count} rows failed" + (f": {sample}" if sample else "")
        params: dict[str, Any] = {
            "store_name": store_name,
            "job_id": job_id,
            "error_message": clip_text(message, MESSAGE_MAX_CHARS),
            "store_id": store_id,
            "error_count": count,
            "extra": _fit({**base, "event": "row_errors", "errors": safe_arguments(reasons[:50])}),
        }
        return [_event(task_id, "row_errors", "notify_import_failure", params)]
    events: list[Event] = []
    for position, exception in enumerate(order_exceptions(result)):
        number = clip_text(str(exception.get("order_number", "?")), 100)
        products = [str(p) for p in exception.get("unmatched_products") or []]
        order_params: dict[str, Any] = {
            "store_name": store_name,
            "order_number": number,
            "unmatched_products": products,
            "store_id": store_id,
            "extra": _fit({**base, "event": "order_exception"}),
        }
        # The position keeps two exceptions with the same (or no) number apart, and is stable
        # when the same result is reported again.
        kind = f"order_exception:{position}:{number}"
        events.append(_event(task_id, kind, "notify_order_exception", order_params))
    return events


def dedup_key(task_id: str, kind: str) -> str:
    """The notification dedup key of one event of one task run."""
    return _bounded(f"celery:{task_id}:{kind}")


def error_count(result: Any) -> tuple[int | None, Sequence[Any]]:
    """Row errors reported by a returned value: ``errors`` (a sequence) or ``error_count``."""
    errors = _field(result, "errors")
    reasons: Sequence[Any] = (
        errors if isinstance(errors, Sequence) and not isinstance(errors, str | bytes) else ()
    )
    count = _field(result, "error_count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count, reasons
    if isinstance(errors, Sequence) and not isinstance(errors, str | bytes):
        return len(reasons), reasons
    return None, ()


def order_exceptions(result: Any) -> list[Mapping[str, Any]]:
    """Orders a sync run reported as referencing unknown products (``order_exceptions``)."""
    items = _field(result, "order_exceptions")
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        return []
    return [item for item in items if isinstance(item, Mapping)]


def _describe(error: Any) -> str:
    """One row error as text: ``line 7: price is not a number`` for line/reason mappings."""
    if isinstance(error, Mapping) and "reason" in error:
        line = error.get("line")
        return f"line {line}: {error['reason']}" if line is not None else str(error["reason"])
    return str(error)


def _field(result: Any, name: str) -> Any:
    if isinstance(result, Mapping):
        return result.get(name)
    return getattr(result, name, None)


def _event(task_id: str, kind: str, action: str, params: dict[str, Any]) -> Event:
    return Event(dedup_key(task_id, kind), action, params, None, time.time())


def _store_and_job(
    spec: JobSpec | None, arguments: Mapping[str, Any], task_id: str
) -> tuple[int | None, str, str]:
    if spec is None:
        return None, "", task_id
    raw_store = spec.resolve(spec.store_id, arguments)
    store_id = _as_int(raw_store)
    store_name = spec.resolve(spec.store_name, arguments)
    if not store_name:
        store_name = f"store {raw_store}" if raw_store is not None else "unknown store"
    job_id = spec.resolve(spec.job_id, arguments) or task_id
    return store_id, clip_text(str(store_name), 100), clip_text(str(job_id), 100)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _alert_kind(spec: JobSpec | None, exc: BaseException) -> tuple[AlertType, Severity]:
    if isinstance(exc, WorkerLostError):
        return AlertType.CAPACITY, Severity.CRITICAL
    if isinstance(exc, TimeLimitExceeded | SoftTimeLimitExceeded):
        return AlertType.PERFORMANCE, Severity.ERROR
    if spec is not None and spec.kind == "sync":
        return AlertType.INTEGRATION, Severity.ERROR
    return AlertType.SYSTEM, Severity.ERROR


def _failure_call(
    spec: JobSpec | None,
    task_name: str,
    exc: BaseException,
    store_id: int | None,
    store_name: str,
    job_id: str,
    message: str,
) -> tuple[str, dict[str, Any]]:
    if spec is None:
        return "notify_critical_error", {
            "error_type": clip_text(f"task {task_name} failed", 150),
            "error_message": message,
        }
    if spec.kind == "import":
        return "notify_import_failure", {
            "store_name": store_name,
            "job_id": job_id,
            "error_message": message,
            "store_id": store_id,
        }
    if spec.kind == "sync":
        return "notify_order_sync_failure", {
            "store_name": store_name,
            "error_message": message,
            "store_id": store_id,
        }
    template = spec.title or "Task {task_name} failed: {exception_class}"
    try:
        title = template.format(task_name=task_name, exception_class=type(exc).__name__)
    except (KeyError, IndexError, ValueError):
        title = template
    return "create_notification", {
        "type": spec.notification_type.value,
        "priority": spec.priority.value,
        "title": clip_text(title, 200),
        "message": message,
        "action_required": True,
        "store_id": store_id,
    }


def _bounded(text: str) -> str:
    """``text`` if it fits a fingerprint/dedup column, else its head plus a digest."""
    if len(text) <= _FINGERPRINT_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: _FINGERPRINT_MAX - 17]}#{digest}"


def _size(metadata: dict[str, Any]) -> int:
    return len(json.dumps(metadata, default=str, ensure_ascii=False).encode())


def _fit(metadata: dict[str, Any]) -> dict[str, Any]:
    """Shrink the traceback, then the arguments, until the metadata fits the core's limit."""
    steps = (("traceback", 2000), ("arguments", 0), ("errors", 0), ("traceback", 0))
    for field, limit in steps:
        if _size(metadata) <= _METADATA_BUDGET:
            break
        if field in metadata:
            value = metadata[field]
            metadata[field] = clip_traceback(str(value), limit) if limit else "[too large]"
    return metadata
