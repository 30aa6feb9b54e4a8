"""Failure reports from background jobs, and the one entry point that records them.

A producer (the Celery worker's drainer, the demo, a host's own job runner) describes each
failure as a :class:`FailureReport`: plain, typed and JSON-serialisable, so it can wait in
a spool file. :func:`record_failures` turns a batch of them into platform alert counts and
notifications. Everything a report needs to be stored (no NUL characters, ids that fit the
integer columns, text within the column limits, metadata within its size limit) is settled
when the report is made, so a report that reached the spool can always be recorded.

Exactly once: each report's ``key`` is written to ``notifier_processed_failures`` in the same
transaction as its effects. A report delivered twice (an ``acks_late`` redelivery, a spool
file replayed after a crash between commit and delete) finds its key there and changes
nothing, whatever the cooldown held back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from .alerts import platform_alert_service
from .enums import AlertType, FailureKind, JobKind, NotificationType, Priority, Severity
from .models import AdminNotification, PlatformAlert, ProcessedFailure
from .notifications import admin_notification_service
from .outbox import symptom_of
from .retry.requests import keep_failed_runs
from .text import (
    MESSAGE_CHARS,
    NAME_CHARS,
    TRACEBACK_CHARS,
    bounded,
    clip,
    storable,
    storable_text,
)
from .types import utcnow
from .validation import INT32_MAX, METADATA_MAX_BYTES, OWNER_MAX, TITLE_MAX, runbook_problem

logger = logging.getLogger("notifier.failures")

#: How long a processed report's key is remembered: longer than any redelivery (a broker's
#: visibility timeout is hours; a spool waits out a database outage of days).
PROCESSED_RETENTION = timedelta(days=30)
#: Rows deleted per statement when pruning, so pruning never holds long locks.
PRUNE_BATCH = 1000
#: Stores failing alike within the cooldown that make a storm across stores.
STORM_STORES = 5
#: Store ids a storm notification's metadata lists at most.
_STORE_IDS = 100

# What the notify_* services add beside a report's metadata (store name, job id, an error
# message of at most MESSAGE_CHARS characters, up to 4 UTF-8 bytes each) must fit too.
_METADATA_BUDGET = METADATA_MAX_BYTES - 6 * 1024
_LINE_CHARS = 200

Outcome = Literal["duplicate", "notified", "counted"]


@dataclass(frozen=True, kw_only=True)
class FailureReport:
    """One failure of one job run, ready to be spooled and recorded.

    ``key`` identifies the event (``celery:<task id>:<event>`` from the worker): a report
    with a key already recorded is never counted again. ``fingerprint`` names the platform
    alert the failure counts; None counts none (row errors, order exceptions).
    ``storm_fingerprint`` (with a ``store_id``) names the store-independent alert that the
    same failure of many stores folds into (see :func:`record_failures`). Generic jobs
    carry their ``notification_type``, ``priority`` and ``title``; a generic report
    without a notification type becomes a critical error. Construction makes every field
    storable: NUL characters escaped, text clipped to its column, an id too large for the
    integer column moved to ``extra["store_ref"]``.
    """

    key: str
    job: JobKind
    kind: FailureKind = FailureKind.EXCEPTION
    task_name: str
    task_id: str
    occurred_at: datetime = field(default_factory=utcnow)
    source: str = "celery"
    event: str = "failure"
    store_id: int | None = None
    store_name: str = ""
    job_id: str = ""
    attempts: int = 1
    exception_class: str | None = None
    message: str = ""
    arguments: Any = None
    traceback: str = ""
    fingerprint: str | None = None
    storm_fingerprint: str | None = None
    alert_type: AlertType = AlertType.SYSTEM
    error_count: int | None = None
    errors: Any = None
    order_number: str = ""
    unmatched_products: list[str] = field(default_factory=list)
    notification_type: NotificationType | None = None
    priority: Priority | None = None
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Who answers for the job, and its runbook (an http(s) URL; any other is dropped).
    owner: str | None = None
    runbook: str | None = None
    #: An opted-in task's retry capture (``notifier.retry``): sealed ``payload`` or the
    #: ``problem`` that kept it from being sealed, ``exchange`` and ``routing_key``.
    retry: dict[str, Any] | None = None
    #: The root-cause scopes this failure is a symptom of (``database:<tag>`` for a
    #: connection error to the worker's database): see ``notifier.health``.
    scopes: list[str] = field(default_factory=list)
    #: Whether the alert resolves itself on the task's next success (for its store).
    resolve_on_success: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        extra = storable(dict(self.extra))
        store_id = self.store_id
        if store_id is not None and not -INT32_MAX - 1 <= store_id <= INT32_MAX:
            # Too large for the integer column: keep it where an admin can still read it.
            extra["store_ref"] = store_id if abs(store_id) < 2**53 else str(store_id)
            store_id = None
        set_(self, "store_id", store_id)
        set_(self, "extra", extra)
        set_(self, "job", JobKind(self.job))
        set_(self, "kind", FailureKind(self.kind))
        set_(self, "alert_type", AlertType(self.alert_type))
        if self.notification_type is not None:
            set_(self, "notification_type", NotificationType(self.notification_type))
        if self.priority is not None:
            set_(self, "priority", Priority(self.priority))
        if self.occurred_at.tzinfo is None:
            set_(self, "occurred_at", self.occurred_at.replace(tzinfo=UTC))
        set_(self, "key", bounded(self.key))
        if self.fingerprint is not None:
            set_(self, "fingerprint", bounded(self.fingerprint))
        if self.storm_fingerprint is not None:
            set_(self, "storm_fingerprint", bounded(self.storm_fingerprint))
        for name, limit in (
            ("task_name", _LINE_CHARS),
            ("task_id", NAME_CHARS * 2),
            ("source", NAME_CHARS),
            ("event", NAME_CHARS),
            ("store_name", NAME_CHARS),
            ("job_id", NAME_CHARS),
            ("order_number", NAME_CHARS),
            ("message", MESSAGE_CHARS),
        ):
            set_(self, name, clip(getattr(self, name), limit))
        set_(self, "traceback", clip(self.traceback, TRACEBACK_CHARS, keep_end=True))
        if self.exception_class is not None:
            set_(self, "exception_class", clip(self.exception_class, _LINE_CHARS))
        if self.title is not None:
            set_(self, "title", clip(self.title, TITLE_MAX))
        set_(self, "arguments", storable(self.arguments))
        set_(self, "errors", storable(self.errors))
        set_(self, "unmatched_products", [storable_text(p) for p in self.unmatched_products])
        owner = clip(storable_text(self.owner), OWNER_MAX).strip() if self.owner else ""
        set_(self, "owner", owner or None)
        if self.runbook is not None and runbook_problem(str(self.runbook)) is not None:
            set_(self, "runbook", None)
        if self.scopes:
            set_(self, "scopes", [bounded(storable_text(str(s))) for s in self.scopes])

    def to_json(self) -> str:
        """The report as one JSON document (what a spool file holds)."""
        # Shallow: every value is already JSON-safe (dataclasses.asdict deep-copies it all).
        document = {name: getattr(self, name) for name in _FIELDS}
        document["occurred_at"] = self.occurred_at.isoformat()
        return json.dumps(document, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> FailureReport:
        """Read a report written by :meth:`to_json`; raises ValueError if it is not one.

        What ``to_json`` wrote was made storable when the report was made, so reading it
        back only restores the types (the drainer reads every spooled report).
        """
        return cls.from_document(json.loads(text))

    @classmethod
    def from_document(cls, data: object) -> FailureReport:
        """:meth:`from_json` of a document already parsed (``json.loads`` of its text)."""
        if not isinstance(data, dict) or not data.keys() >= _REQUIRED:
            raise ValueError("not a failure report (a JSON object with key, job, task...)")
        report = object.__new__(cls)
        values = {k: v for k, v in data.items() if k in _FIELDS}
        for name, make in _DEFAULTS.items():  # a default made only when missing
            if name not in values:
                values[name] = make()
        try:
            values["occurred_at"] = datetime.fromisoformat(str(values["occurred_at"]))
            for name, kind in _ENUMS.items():
                if values[name] is not None:
                    values[name] = kind(values[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a failure report: {exc}") from exc
        report.__dict__.update(values)
        return report

    @property
    def short_exception(self) -> str:
        """The exception's class name without its module."""
        return (self.exception_class or "Error").rsplit(".", 1)[-1]

    def alert(self) -> dict[str, Any] | None:
        """The platform alert this failure counts, as ``create_or_increment_alert`` fields."""
        if self.fingerprint is None:
            return None
        alert_type, severity = self.alert_type, Severity.ERROR
        if self.kind is FailureKind.WORKER_LOST:
            alert_type, severity = AlertType.CAPACITY, Severity.CRITICAL
        elif self.kind is FailureKind.TIME_LIMIT:
            alert_type = AlertType.PERFORMANCE
        return {
            "alert_type": alert_type,
            "severity": severity,
            "title": clip(f"{self.task_name} failed: {self.short_exception}", TITLE_MAX),
            "fingerprint": self.fingerprint,
            "description": self.message or None,
            "affected_stores": [self.store_id] if self.store_id is not None else [],
            "affected_systems": [self.source] if self.source.strip() else [],
            "owner": self.owner,
            "runbook": self.runbook,
            "recovery_task": self.task_name if self.resolve_on_success else None,
            "scopes": self.scopes,
            "metadata": {
                "task_name": self.task_name,
                "exception_class": self.exception_class,
                # How a storm finds the stores failing alike (see _recent_stores).
                **({_FAMILY: self.storm_fingerprint} if self.storm_fingerprint else {}),
            },
        }


#: The per-store alert's metadata key naming its storm fingerprint.
_FAMILY = "storm_fingerprint"
_FIELDS = frozenset(f.name for f in fields(FailureReport))
_REQUIRED = frozenset(("key", "job", "task_name", "task_id", "occurred_at"))
_DEFAULTS: dict[str, Callable[[], Any]] = {
    f.name: (f.default_factory if f.default is MISSING else (lambda v=f.default: v))  # type: ignore[misc]
    for f in fields(FailureReport)
    if f.default is not MISSING or f.default_factory is not MISSING
}
_ENUMS: dict[str, Callable[[Any], Any]] = {
    "job": JobKind,
    "kind": FailureKind,
    "alert_type": AlertType,
    "notification_type": NotificationType,
    "priority": Priority,
}
# One cached statement per dialect, run as an executemany that SQLAlchemy sends as one
# multi-row INSERT (insertmanyvalues); RETURNING lists only the keys it inserted.
# The table, not the ORM entity: an ORM bulk insert with RETURNING goes row by row.
_PROCESSED = ProcessedFailure.__table__
_CLAIM = {
    name: dialect.insert(_PROCESSED)
    .on_conflict_do_nothing(index_elements=["key"])
    .returning(_PROCESSED.c.key)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def record_failures(
    db: Session, reports: Sequence[FailureReport], *, cooldown: timedelta
) -> list[bool]:
    """Record ``reports`` in ``db`` (the caller commits); True for each recorded one.

    Each report counts its alert (one upsert per fingerprint for the batch) and becomes a
    notification, unless a notification for the same fingerprint was created within
    ``cooldown`` (a storm is one notification and an alert counting every occurrence).
    A report with a ``storm_fingerprint`` and a store is a storm across stores once
    ``STORM_STORES`` stores have open alerts of that storm fingerprint that occurred within
    ``cooldown`` (its own store included): it and every later one, while that storm alert
    keeps occurring within ``cooldown``, count on the storm fingerprint's alert instead,
    whose one notification names how many stores it lists. Reports of one storm
    fingerprint are decided one transaction at a time (a PostgreSQL advisory lock; SQLite
    has one writer), so concurrent recorders never both start a storm.
    A report whose key was recorded before changes nothing and counts as recorded.
    If one report cannot be stored, the batch is redone one savepoint per report, so only
    that one gets False. An unreachable database, or a schema that is missing or out of
    date, raises: the caller keeps every report for a later attempt.
    """
    if not reports:
        return []
    # A session with no transaction yet holds nothing of the caller's: the batch can run in
    # its transaction and a failure roll it back, without a savepoint's two round trips.
    own = not db.in_transaction()
    try:
        with nullcontext() if own else db.begin_nested():
            _record(db, reports, cooldown)
        return [True] * len(reports)
    except Exception as exc:
        if own:
            db.rollback()
        if must_wait(exc):
            raise
        logger.warning("notifier: a batch of %d failures failed; retrying one by one", len(reports))
    outcomes: list[bool] = []
    for report in reports:
        try:
            with db.begin_nested():
                _record(db, [report], cooldown)
            outcomes.append(True)
        except Exception as exc:
            if must_wait(exc):
                raise
            logger.exception("notifier: failure report %s can never be recorded", report.key)
            outcomes.append(False)
    return outcomes


def must_wait(exc: BaseException) -> bool:
    """Whether a database error means "try again later" rather than "this report is bad".

    The database is unreachable or gone away, or the schema lacks a table or column
    (``notifier init-db`` has not been run against it yet).
    """
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        # PostgreSQL: undefined_table, undefined_column.
        return getattr(exc.orig, "sqlstate", None) in ("42P01", "42703")
    return False


def prune_processed(
    db: Session, *, retention: timedelta = PROCESSED_RETENTION, now: datetime | None = None
) -> int:
    """Forget at most one batch of processed keys older than ``retention``; returns how many."""
    cutoff = (now or utcnow()) - retention
    oldest = (
        select(ProcessedFailure.key)
        .where(ProcessedFailure.processed_at < cutoff)
        .order_by(ProcessedFailure.processed_at)
        .limit(PRUNE_BATCH)
    )
    result = db.execute(
        delete(ProcessedFailure)
        .where(ProcessedFailure.key.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- recording ------------------------------------------------------------------------------


def _record(db: Session, reports: Sequence[FailureReport], cooldown: timedelta) -> None:
    fresh = _claim(db, reports)
    alerts, storms = _route(db, fresh, cooldown)
    counted, rows = _count_alerts(db, alerts)
    if any(report.retry for report in fresh):
        keep_failed_runs(db, fresh, [rows.get(a["fingerprint"]) if a else None for a in alerts])
    now = utcnow()
    notified: dict[str, bool] = {}
    for position, report in enumerate(fresh):
        alert, created = alerts[position], counted.get(position)
        fingerprint = alert["fingerprint"] if alert is not None else None
        row = rows.get(fingerprint) if fingerprint is not None else None
        if row is not None and row.snoozed_until is not None and row.snoozed_until > now:
            continue  # counted, but a snoozed alert stays silent
        if fingerprint is not None and created is False:
            if fingerprint not in notified:
                notified[fingerprint] = _notified_recently(db, fingerprint, cooldown)
            if notified[fingerprint]:
                continue
        if row is not None and position in storms:
            _notify_storm(db, report, row)
        else:
            _notify(db, report, fingerprint)
        if fingerprint is not None and cooldown > timedelta(0):
            notified[fingerprint] = True


def _claim(db: Session, reports: Sequence[FailureReport]) -> list[FailureReport]:
    """The reports whose key this transaction is first to record, each key once.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a concurrent transaction holding
    the same key makes this one wait for its outcome, so a key is never recorded twice.
    Keys go in sorted order, so two recorders never wait on each other in a circle.
    """
    keys = sorted({report.key for report in reports})
    now = utcnow()
    rows = [{"key": key, "processed_at": now} for key in keys]
    statement = _CLAIM[db.get_bind().dialect.name]
    claimed = set(db.execute(statement, rows).scalars())
    fresh = []
    for report in reports:
        if report.key in claimed:
            claimed.discard(report.key)
            fresh.append(report)
    return fresh


def _count_alerts(
    db: Session, routed: Sequence[dict[str, Any] | None]
) -> tuple[dict[int, bool], dict[str, PlatformAlert]]:
    """Count every report's alert with one upsert per fingerprint; ``created`` by position.

    Also returns each alert as counted, by fingerprint (a rise in severity has already
    ended its snooze).

    The result is what one upsert per report, in order, would have left: the count grows by
    the number of reports, the severity is the highest, the stores and systems are the
    union and the description is the last one's. The first report of a fingerprint gets
    ``created`` as the upsert said; the others count as increments. Fingerprints go in
    sorted order, so two recorders lock alert rows in the same order.
    """
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for position, alert in enumerate(routed):
        if alert is not None:
            groups.setdefault(alert["fingerprint"], []).append((position, alert))
    counted: dict[int, bool] = {}
    rows: dict[str, PlatformAlert] = {}
    for fingerprint in sorted(groups):
        members = groups[fingerprint]
        alerts = [alert for _, alert in members]
        merged = dict(alerts[0])
        merged["severity"] = max((Severity(a["severity"]) for a in alerts), key=lambda s: s.rank)
        for name in ("affected_stores", "affected_systems"):
            merged[name] = sorted({item for a in alerts for item in a[name]})
        merged["description"] = next(
            (a["description"] for a in reversed(alerts) if a["description"]), None
        )
        with symptom_of(db, merged.pop("scopes", None) or ()):
            row, created = platform_alert_service.create_or_increment_alert(
                db, **merged, occurrences=len(members)
            )
        for n, (position, _) in enumerate(members):
            counted[position] = created and n == 0
        rows[fingerprint] = row
    return counted, rows


def _route(
    db: Session, reports: Sequence[FailureReport], cooldown: timedelta
) -> tuple[list[dict[str, Any] | None], set[int]]:
    """Each report's alert: its own, or its storm alert; and the positions of the latter.

    With no cooldown there are no storms: every report notifies anyway.
    """
    alerts = [report.alert() for report in reports]
    families: dict[str, list[int]] = {}
    for position, report in enumerate(reports):
        family = report.storm_fingerprint
        if family and report.store_id is not None and alerts[position] and report.job in _BY_JOB:
            families.setdefault(family, []).append(position)
    if not families or cooldown <= timedelta(0):
        return alerts, set()
    _lock_families(db, families)
    since = utcnow() - cooldown
    storms: set[int] = set()
    for family, positions in families.items():
        # None once the storm is on: every later report of the family joins it.
        stores = _recent_stores(db, family, since)
        for position in positions:
            report = reports[position]
            assert report.store_id is not None  # families hold reports with a store only
            if stores is not None:
                stores.add(report.store_id)
                if len(stores) < STORM_STORES:
                    continue
            alerts[position] = _storm_alert(report, stores or {report.store_id})
            storms.add(position)
            stores = None
    return alerts, storms


def _lock_families(db: Session, families: Mapping[str, object]) -> None:
    """Take each storm fingerprint's lock until commit, in one order for every recorder.

    Deciding whether a storm begins reads other transactions' counts, so two recorders of
    one family must not decide at once. SQLite needs nothing: the claim already made this
    transaction the only writer.
    """
    if db.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({_lock_key(family) for family in families}):
        db.execute(select(func.pg_advisory_xact_lock(key)))


def _lock_key(family: str) -> int:
    digest = hashlib.sha256(b"notifier:storm:" + family.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _recent_stores(db: Session, family: str, since: datetime) -> set[int] | None:
    """The stores whose open alert of this family occurred within the cooldown.

    None when the family's storm alert itself is open and occurred within the cooldown
    (the storm is going on). One statement reads both.
    """
    rows = db.execute(
        select(PlatformAlert.fingerprint, PlatformAlert.affected_stores).where(
            PlatformAlert.is_resolved.is_(False),
            PlatformAlert.last_occurred_at >= since,
            or_(
                PlatformAlert.fingerprint == family,
                PlatformAlert.alert_metadata[_FAMILY].as_string() == family,
            ),
        )
    ).all()
    if any(fingerprint == family for fingerprint, _ in rows):
        return None
    return {store for _, stores in rows for store in stores if isinstance(store, int)}


def _storm_alert(report: FailureReport, stores: set[int]) -> dict[str, Any]:
    """The family's alert for ``report``: the first one names every store of the storm."""
    alert = report.alert()
    assert alert is not None and report.storm_fingerprint is not None  # _route checked
    alert.update(
        fingerprint=report.storm_fingerprint,
        title=clip(
            f"{report.task_name} failed for many stores: {report.short_exception}", TITLE_MAX
        ),
        affected_stores=sorted(stores),
        metadata={"task_name": report.task_name, "exception_class": report.exception_class},
        recovery_task=None,  # one store's success does not end a storm across stores
    )
    return alert


def _notify_storm(db: Session, report: FailureReport, alert: PlatformAlert) -> None:
    """One notification for a storm across stores, naming how many its alert lists."""
    stores = sorted(s for s in alert.affected_stores if isinstance(s, int))
    # Fitted again: the store ids must not push the metadata past its limit.
    meta = _fit({**_metadata(report), "store_count": len(stores), "store_ids": stores[:_STORE_IDS]})
    label = f"{len(stores)} stores"
    said = f"{report.task_name} failed alike for {label}; the last, {report.store_name}: "
    storm = replace(
        report, store_id=None, store_name=label, message=clip(said + report.message, MESSAGE_CHARS)
    )
    keys: dict[str, Any] = {"dedup_key": report.key, "alert_fingerprint": alert.fingerprint}
    with symptom_of(db, report.scopes):
        _BY_JOB[report.job](db, storm, meta, keys)


def _notified_recently(db: Session, fingerprint: str, cooldown: timedelta) -> bool:
    if cooldown <= timedelta(0):
        return False
    found = db.scalar(
        select(AdminNotification.id)
        .where(
            AdminNotification.alert_fingerprint == fingerprint,
            AdminNotification.created_at >= utcnow() - cooldown,
        )
        .limit(1)
    )
    return found is not None


def _notify(db: Session, report: FailureReport, fingerprint: str | None) -> None:
    """Create the report's notification through the service call its failure names."""
    # Every notification of a report is deduplicated by its key and names its alert.
    keys: dict[str, Any] = {"dedup_key": report.key, "alert_fingerprint": fingerprint}
    with symptom_of(db, report.scopes):
        _sender(report)(db, report, _metadata(report), keys)


#: A notification shape: (session, report, metadata, dedup and alert keys).
_Sender = Callable[[Session, FailureReport, dict[str, Any], dict[str, Any]], object]


def _order_exception(
    db: Session, report: FailureReport, meta: dict[str, Any], keys: dict[str, Any]
) -> object:
    return admin_notification_service.notify_order_exception(
        db,
        store_name=report.store_name,
        order_number=report.order_number or "?",
        unmatched_products=report.unmatched_products,
        store_id=report.store_id,
        extra=meta,
        **keys,
    )


def _import_failure(
    db: Session, report: FailureReport, meta: dict[str, Any], keys: dict[str, Any]
) -> object:
    return admin_notification_service.notify_import_failure(
        db,
        store_name=report.store_name,
        job_id=report.job_id or report.task_id,
        error_message=report.message,
        store_id=report.store_id,
        error_count=report.error_count,
        extra=meta,
        **keys,
    )


def _sync_failure(
    db: Session, report: FailureReport, meta: dict[str, Any], keys: dict[str, Any]
) -> object:
    return admin_notification_service.notify_order_sync_failure(
        db,
        store_name=report.store_name,
        error_message=report.message,
        store_id=report.store_id,
        error_count=report.error_count,
        extra=meta,
        **keys,
    )


def _declared_type(
    db: Session, report: FailureReport, meta: dict[str, Any], keys: dict[str, Any]
) -> object:
    assert report.notification_type is not None  # _sender checked
    return admin_notification_service.create_notification(
        db,
        type=report.notification_type,
        priority=report.priority or Priority.HIGH,
        title=report.title or f"Task {report.task_name} failed: {report.short_exception}",
        message=report.message or report.short_exception,
        action_required=True,
        store_id=report.store_id,
        metadata=meta,
        **keys,
    )


def _critical_error(
    db: Session, report: FailureReport, meta: dict[str, Any], keys: dict[str, Any]
) -> object:
    return admin_notification_service.notify_critical_error(
        db,
        error_type=clip(f"task {report.task_name} failed", 150),
        error_message=report.message or report.short_exception,
        details=meta,
        **keys,
    )


#: The notification an import or a sync job raises; a generic job's depends on its task.
_BY_JOB: dict[JobKind, _Sender] = {JobKind.IMPORT: _import_failure, JobKind.SYNC: _sync_failure}


def _sender(report: FailureReport) -> _Sender:
    """The notification a report makes, chosen by its shape, its job kind, then its type.

    An order exception's shape first (whatever the job), then the job kind's, then the
    type the task declared, else a critical error.
    """
    if report.kind is FailureKind.ORDER_EXCEPTION:
        return _order_exception
    if report.job in _BY_JOB:
        return _BY_JOB[report.job]
    if report.notification_type is not None:
        return _declared_type
    return _critical_error


def _metadata(report: FailureReport) -> dict[str, Any]:
    """What the notification's metadata says about the run, within the size limit."""
    meta: dict[str, Any] = {
        "event": report.event,
        "task_name": report.task_name,
        "task_id": report.task_id,
        "arguments": report.arguments,
    }
    if report.kind is FailureKind.ROW_ERRORS:
        meta["errors"] = report.errors
    elif report.kind is not FailureKind.ORDER_EXCEPTION:
        meta.update(
            exception_class=report.exception_class,
            attempts=report.attempts,
            traceback=report.traceback,
        )
    meta.update(report.extra)
    meta.update((k, v) for k, v in (("owner", report.owner), ("runbook", report.runbook)) if v)
    return _fit(meta)


def _fit(metadata: dict[str, Any]) -> dict[str, Any]:
    """Shrink the traceback, then the arguments, until the metadata fits its limit."""
    steps = (("traceback", 2000), ("arguments", 0), ("errors", 0), ("traceback", 0))
    for name, limit in steps:
        if _size(metadata) <= _METADATA_BUDGET:
            break
        if name in metadata:
            value = metadata[name]
            metadata[name] = clip(value, limit, keep_end=True) if limit else "[too large]"
    return metadata


def _size(metadata: Mapping[str, Any]) -> int:
    return len(json.dumps(metadata, default=str, ensure_ascii=False).encode())


__all__ = [
    "PROCESSED_RETENTION",
    "STORM_STORES",
    "FailureKind",
    "FailureReport",
    "JobKind",
    "must_wait",
    "prune_processed",
    "record_failures",
]
