"""Task decorators that say what a job's failure means: an import, a sync, or a generic job.

A decorator only attaches a :class:`JobSpec` to the function; the signal handlers read it.
The function itself is returned unchanged, so its name, signature and docstring are kept
and Celery's ``@app.task`` / ``@shared_task`` (with ``bind``, ``autoretry_for``, a custom
``base``...) see exactly the function the author wrote.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from notifier import NotificationType, Priority

F = TypeVar("F", bound=Callable[..., Any])

#: Where an event finds a value: the name of a task argument, or a callable given the task's
#: arguments by name (``{"store_id": 5, "csv_path": "..."}``) that returns it.
ArgumentRef = str | Callable[[Mapping[str, Any]], Any] | None

SPEC_ATTRIBUTE = "__notifier_job__"


@dataclass(frozen=True)
class JobSpec:
    """What a decorated task's failure means, and where its store and job ids are."""

    kind: Literal["import", "sync", "generic"]
    store_id: ArgumentRef = "store_id"
    store_name: ArgumentRef = None
    job_id: ArgumentRef = None
    error_threshold: int | None = None
    notification_type: NotificationType = NotificationType.CRITICAL_ERROR
    priority: Priority = Priority.HIGH
    title: str | None = None

    def resolve(self, ref: ArgumentRef, arguments: Mapping[str, Any]) -> Any:
        """The value ``ref`` points at among the task's ``arguments`` (None when absent)."""
        if ref is None:
            return None
        if callable(ref):
            return ref(arguments)
        return arguments.get(ref)


def _mark(fn: F, spec: JobSpec, decorator: str) -> F:
    if not inspect.isfunction(fn) and not inspect.ismethod(fn):
        raise TypeError(
            f"@{decorator} must decorate the task's function, below @app.task / @shared_task "
            f"(got {fn!r})"
        )
    setattr(fn, SPEC_ATTRIBUTE, spec)
    return fn


@overload
def import_job(fn: F, /) -> F: ...
@overload
def import_job(
    *,
    store_id: ArgumentRef = "store_id",
    store_name: ArgumentRef = None,
    job_id: ArgumentRef = None,
    error_threshold: int | None = None,
) -> Callable[[F], F]: ...
def import_job(
    fn: F | None = None,
    /,
    *,
    store_id: ArgumentRef = "store_id",
    store_name: ArgumentRef = None,
    job_id: ArgumentRef = None,
    error_threshold: int | None = None,
) -> F | Callable[[F], F]:
    """Mark a task as a store's data import.

    Its final failure calls ``notify_import_failure``; so does a run that returns at least
    ``error_threshold`` row errors (default: the app's ``notifier_error_threshold``, 5).
    ``job_id`` defaults to the Celery task id, ``store_name`` to ``"store <id>"``.
    """
    spec = JobSpec(
        kind="import",
        store_id=store_id,
        store_name=store_name,
        job_id=job_id,
        error_threshold=error_threshold,
    )
    if fn is not None:
        return _mark(fn, spec, "import_job")
    return lambda f: _mark(f, spec, "import_job")


@overload
def sync_job(fn: F, /) -> F: ...
@overload
def sync_job(
    *, store_id: ArgumentRef = "store_id", store_name: ArgumentRef = None
) -> Callable[[F], F]: ...
def sync_job(
    fn: F | None = None,
    /,
    *,
    store_id: ArgumentRef = "store_id",
    store_name: ArgumentRef = None,
) -> F | Callable[[F], F]:
    """Mark a task as a sync with an external marketplace API.

    Its final failure calls ``notify_order_sync_failure`` and counts an ``integration``
    alert for that store; a returned run listing ``order_exceptions`` calls
    ``notify_order_exception`` once per order.
    """
    spec = JobSpec(kind="sync", store_id=store_id, store_name=store_name)
    if fn is not None:
        return _mark(fn, spec, "sync_job")
    return lambda f: _mark(f, spec, "sync_job")


def notify_on_failure(
    *,
    type: NotificationType | str = NotificationType.CRITICAL_ERROR,
    priority: Priority | str = Priority.HIGH,
    title: str | None = None,
    store_id: ArgumentRef = None,
) -> Callable[[F], F]:
    """Mark any task: its final failure creates one notification of ``type`` and ``priority``.

    ``title`` may use ``{task_name}`` and ``{exception_class}``; the default is
    ``"Task <name> failed: <ExceptionClass>"``.
    """
    spec = JobSpec(
        kind="generic",
        store_id=store_id,
        notification_type=NotificationType(type),
        priority=Priority(priority),
        title=title,
    )
    return lambda f: _mark(f, spec, "notify_on_failure")


def spec_of(task: Any) -> JobSpec | None:
    """The JobSpec attached to a Celery task's function, if any."""
    run = getattr(task, "run", None)
    spec = getattr(run, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, JobSpec) else None


def task_arguments(task: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The task's call arguments by parameter name (``args``/``kwargs`` if they do not bind)."""
    args = list(args or ())
    kwargs = dict(kwargs or {})
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **kwargs)
    except (TypeError, ValueError, AttributeError):
        return {"args": args, "kwargs": kwargs}
    return dict(bound.arguments)
