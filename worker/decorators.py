"""Task decorators that say what a job's failure means: an import, a sync, or a generic job.

A decorator only attaches a :class:`JobSpec` to the function; the signal handlers read it.
The function itself is returned unchanged, so its name, signature and docstring are kept
and Celery's ``@app.task`` / ``@shared_task`` (with ``bind``, ``autoretry_for``, a custom
``base``...) see exactly the function the author wrote.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

from notifier import AlertType, FailureKind, FailureReport, JobKind, NotificationType, Priority
from notifier.validation import runbook_problem

F = TypeVar("F", bound=Callable[..., Any])

#: Where an event finds a value: the name of a task argument, or a callable given the task's
#: arguments by name (``{"store_id": 5, "csv_path": "..."}``) that returns it.
ArgumentRef = str | Callable[[Mapping[str, Any]], Any] | None

SPEC_ATTRIBUTE = "__notifier_job__"


@dataclass(frozen=True)
class Failure:
    """The Celery facts of one failed run, already redacted, that a spec turns into a report."""

    key: str
    event: str
    kind: FailureKind
    task_name: str
    task_id: str
    arguments: Mapping[str, Any]
    safe_arguments: Any
    attempts: int
    exception_class: str
    short_exception: str
    message: str
    traceback: str
    owner: str | None = None
    runbook: str | None = None
    retry: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobSpec:
    """What a decorated task's failure means, and where its store and job ids are.

    One subclass per kind of job; each knows which notification its failure makes
    (``job``), which platform alert it counts (``alert_type``, ``fingerprint``) and what
    a returned run can report.
    """

    store_id: ArgumentRef = "store_id"
    store_name: ArgumentRef = None
    job_id: ArgumentRef = None
    #: Who answers for this job, and its runbook URL (else ``notifier_owners`` / ``_runbooks``).
    owner: str | None = None
    runbook: str | None = None
    #: Keep the arguments of a failed run (encrypted) so an admin can retry it.
    retryable: bool = False

    job: ClassVar[JobKind] = JobKind.GENERIC
    alert_type: ClassVar[AlertType] = AlertType.SYSTEM

    @property
    def kind(self) -> str:
        """``"import"``, ``"sync"`` or ``"generic"``."""
        return self.job.value

    def resolve(self, ref: ArgumentRef, arguments: Mapping[str, Any]) -> Any:
        """The value ``ref`` points at among the task's ``arguments`` (None when absent)."""
        if ref is None:
            return None
        if callable(ref):
            return ref(arguments)
        return arguments.get(ref)

    def locate(self, arguments: Mapping[str, Any], task_id: str) -> dict[str, Any]:
        """The run's store id, store name and job id, as report fields."""
        raw_store = self.resolve(self.store_id, arguments)
        store_name = self.resolve(self.store_name, arguments)
        if not store_name:
            store_name = f"store {raw_store}" if raw_store is not None else "unknown store"
        job_id = self.resolve(self.job_id, arguments) or task_id
        return {
            "store_id": _as_int(raw_store),
            "store_name": str(store_name),
            "job_id": str(job_id),
        }

    def fingerprint(self, failure: Failure, store_id: int | None) -> str:
        """The platform alert a failure counts: one per task and exception class."""
        return f"celery:{failure.task_name}:{failure.exception_class}"

    def storm_fingerprint(self, failure: Failure, store_id: int | None) -> str | None:
        """The alert a storm of this failure across stores folds into (None: never folds)."""
        return None

    def notification_fields(self, failure: Failure) -> dict[str, Any]:
        """Report fields that pick and fill this kind's notification."""
        return {}

    def failure_report(self, failure: Failure) -> FailureReport:
        """The report of a final failure of a task with this spec."""
        located = self.locate(failure.arguments, failure.task_id)
        return FailureReport(
            key=failure.key,
            job=self.job,
            kind=failure.kind,
            event=failure.event,
            task_name=failure.task_name,
            task_id=failure.task_id,
            attempts=failure.attempts,
            exception_class=failure.exception_class,
            message=failure.message,
            arguments=failure.safe_arguments,
            traceback=failure.traceback,
            fingerprint=self.fingerprint(failure, located["store_id"]),
            storm_fingerprint=self.storm_fingerprint(failure, located["store_id"]),
            alert_type=self.alert_type,
            owner=failure.owner,
            runbook=failure.runbook,
            retry=failure.retry,
            **located,
            **self.notification_fields(failure),
        )

    def wants_result(self, result: Any, default_threshold: Callable[[], int]) -> bool:
        """Whether a returned ``result`` has anything to report (cheap: every success asks)."""
        return False

    def row_errors(
        self, result: Any, default_threshold: Callable[[], int]
    ) -> tuple[int, Sequence[Any]] | None:
        """The row error count and reasons of a returned run, when they are worth a report."""
        return None

    def unmatched_orders(self, result: Any) -> list[Mapping[str, Any]]:
        """The orders with unknown products a returned run reports, one report each."""
        return []


@dataclass(frozen=True)
class StoreJob(JobSpec):
    """A job about one store (an import or a sync): one alert per store.

    Folded into one
    per task and exception class when 5+ stores fail alike (see ``record_failures``); a
    run that returns at least the threshold of row errors notifies.
    """

    error_threshold: int | None = None

    def fingerprint(self, failure: Failure, store_id: int | None) -> str:
        """One alert per task, exception class and store."""
        return f"{super().fingerprint(failure, store_id)}:store={store_id}"

    def storm_fingerprint(self, failure: Failure, store_id: int | None) -> str | None:
        """The task and exception class's alert, whatever the store (none without a store)."""
        return None if store_id is None else super().fingerprint(failure, store_id)

    def wants_result(self, result: Any, default_threshold: Callable[[], int]) -> bool:
        """True when the run returned at least the threshold of row errors."""
        return self.row_errors(result, default_threshold) is not None

    def row_errors(
        self, result: Any, default_threshold: Callable[[], int]
    ) -> tuple[int, Sequence[Any]] | None:
        """The count and reasons, when the count reaches this task's threshold or the app's."""
        count, reasons = error_count(result)
        if count is None:
            return None
        threshold = default_threshold() if self.error_threshold is None else self.error_threshold
        return (count, reasons) if count >= threshold else None


@dataclass(frozen=True)
class ImportJob(StoreJob):
    """A store's data import: failures and runs with too many row errors notify."""

    job: ClassVar[JobKind] = JobKind.IMPORT


@dataclass(frozen=True)
class SyncJob(StoreJob):
    """A sync with a marketplace: an ``integration`` alert per store.

    Failures, runs with
    too many row errors and each order with unknown products notify.
    """

    alert_type: ClassVar[AlertType] = AlertType.INTEGRATION
    job: ClassVar[JobKind] = JobKind.SYNC

    def wants_result(self, result: Any, default_threshold: Callable[[], int]) -> bool:
        """True when the run returned order exceptions or too many row errors."""
        return bool(order_exceptions(result)) or super().wants_result(result, default_threshold)

    def unmatched_orders(self, result: Any) -> list[Mapping[str, Any]]:
        """The run's ``order_exceptions``."""
        return order_exceptions(result)


@dataclass(frozen=True)
class GenericJob(JobSpec):
    """Any other job: one notification of the given type and priority.

    Any other job: one notification of the given type and priority (critical error when
    no type is given, as for ``install(app, all_tasks=True)``).
    """

    store_id: ArgumentRef = None
    notification_type: NotificationType | None = NotificationType.CRITICAL_ERROR
    priority: Priority = Priority.HIGH
    title: str | None = None

    def notification_fields(self, failure: Failure) -> dict[str, Any]:
        """Type, priority and the title with ``{task_name}``/``{exception_class}`` filled."""
        if self.notification_type is None:
            return {}
        template = self.title or "Task {task_name} failed: {exception_class}"
        try:
            title = template.format(
                task_name=failure.task_name, exception_class=failure.short_exception
            )
        except (KeyError, IndexError, ValueError):
            title = template
        return {
            "notification_type": self.notification_type,
            "priority": self.priority,
            "title": title,
        }


#: The spec of an undecorated task when the plugin notifies for all tasks.
ANY_TASK = GenericJob(notification_type=None)


def _mark(fn: F, spec: JobSpec, decorator: str) -> F:
    if not inspect.isfunction(fn) and not inspect.ismethod(fn):
        raise TypeError(
            f"@{decorator} must decorate the task's function, below @app.task / @shared_task "
            f"(got {fn!r})"
        )
    problem = runbook_problem(spec.runbook) if spec.runbook is not None else None
    if problem:
        raise ValueError(f"@{decorator}(runbook=...): {problem}")
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
    owner: str | None = None,
    runbook: str | None = None,
    retryable: bool = False,
) -> Callable[[F], F]: ...
def import_job(
    fn: F | None = None,
    /,
    *,
    store_id: ArgumentRef = "store_id",
    store_name: ArgumentRef = None,
    job_id: ArgumentRef = None,
    error_threshold: int | None = None,
    owner: str | None = None,
    runbook: str | None = None,
    retryable: bool = False,
) -> F | Callable[[F], F]:
    """Mark a task as a store's data import.

    Its final failure calls ``notify_import_failure`` and counts a ``system`` alert for that
    store; a run that returns at least ``error_threshold`` row errors (default: the app's
    ``notifier_error_threshold``, 5) calls it too, with the count.
    ``job_id`` defaults to the Celery task id, ``store_name`` to ``"store <id>"``.
    ``owner`` and ``runbook`` (an http(s) URL) ride on its alerts and notifications.
    ``retryable=True`` keeps a failed run's arguments, encrypted, for a retry by an admin.
    """
    spec = ImportJob(
        store_id=store_id,
        store_name=store_name,
        job_id=job_id,
        error_threshold=error_threshold,
        owner=owner,
        runbook=runbook,
        retryable=retryable,
    )
    if fn is not None:
        return _mark(fn, spec, "import_job")
    return lambda f: _mark(f, spec, "import_job")


@overload
def sync_job(fn: F, /) -> F: ...
@overload
def sync_job(
    *,
    store_id: ArgumentRef = "store_id",
    store_name: ArgumentRef = None,
    error_threshold: int | None = None,
    owner: str | None = None,
    runbook: str | None = None,
    retryable: bool = False,
) -> Callable[[F], F]: ...
def sync_job(
    fn: F | None = None,
    /,
    *,
    store_id: ArgumentRef = "store_id",
    store_name: ArgumentRef = None,
    error_threshold: int | None = None,
    owner: str | None = None,
    runbook: str | None = None,
    retryable: bool = False,
) -> F | Callable[[F], F]:
    """Mark a task as a sync with an external marketplace API.

    Its final failure calls ``notify_order_sync_failure`` and counts an ``integration``
    alert for that store; a run that returns at least ``error_threshold`` row errors
    (default: the app's ``notifier_error_threshold``, 5) calls it too, with the count, and
    one listing ``order_exceptions`` calls ``notify_order_exception`` once per order.
    """
    spec = SyncJob(
        store_id=store_id,
        store_name=store_name,
        error_threshold=error_threshold,
        owner=owner,
        runbook=runbook,
        retryable=retryable,
    )
    if fn is not None:
        return _mark(fn, spec, "sync_job")
    return lambda f: _mark(f, spec, "sync_job")


def notify_on_failure(
    *,
    type: NotificationType | str = NotificationType.CRITICAL_ERROR,
    priority: Priority | str = Priority.HIGH,
    title: str | None = None,
    store_id: ArgumentRef = None,
    owner: str | None = None,
    runbook: str | None = None,
    retryable: bool = False,
) -> Callable[[F], F]:
    """Mark any task: its final failure creates one notification of ``type`` and ``priority``.

    ``title`` may use ``{task_name}`` and ``{exception_class}``; the default is
    ``"Task <name> failed: <ExceptionClass>"``. ``owner`` and ``runbook`` (an http(s)
    URL) ride on its alerts and notifications.
    """
    spec = GenericJob(
        store_id=store_id,
        notification_type=NotificationType(type),
        priority=Priority(priority),
        title=title,
        owner=owner,
        runbook=runbook,
        retryable=retryable,
    )
    return lambda f: _mark(f, spec, "notify_on_failure")


def spec_of(task: Any) -> JobSpec | None:
    """The JobSpec attached to a Celery task's function, if any."""
    run = getattr(task, "run", None)
    spec = getattr(run, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, JobSpec) else None


@functools.lru_cache(maxsize=1024)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """A task function's signature, computed once (task functions live as long as the app)."""
    return inspect.signature(fn)


def task_arguments(task: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The task's call arguments by parameter name (``args``/``kwargs`` if they do not bind)."""
    args = list(args or ())
    kwargs = dict(kwargs or {})
    try:
        bound = _signature(task.run).bind_partial(*args, **kwargs)
    except (TypeError, ValueError, AttributeError):
        return {"args": args, "kwargs": kwargs}
    return dict(bound.arguments)


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


def _field(result: Any, name: str) -> Any:
    if type(result) is dict:  # the usual case, without the abstract-class check
        return result.get(name)
    if isinstance(result, Mapping):
        return result.get(name)
    return getattr(result, name, None)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:  # int() alone: str.isdigit() accepts "²", which int() refuses
            return int(value.strip())
        except ValueError:
            return None
    return None
