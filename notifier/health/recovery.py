"""Resolve on recovery: an alert about a task resolves itself when that task next succeeds.

An alert opened with a ``recovery_task`` (a failure, a missed run, a hung run) resolves
when a run of that task succeeds; an alert that names stores only when the run was for one
of them. It is recorded as resolved automatically, with the run (``alert_metadata
["resolved_by_run"]``), and ``alert.resolved`` goes to the channels that had the alert
(the endpoints and mailboxes its earlier deliveries went to), not to every endpoint.

The worker's success path must stay nearly free, so it never asks the database: each
worker process keeps the set :func:`watched` returns (refreshed every few seconds) and
only a success of a task in it is spooled, as a report whose ``event`` is
:data:`RECOVERED`. The drainer records a batch with :func:`record_runs`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import outbox
from ..enums import DeliveryChannel, DeliveryEvent
from ..failures import FailureReport, record_failures
from ..metrics import inc_on_commit
from ..models import Delivery, DeliveryEndpoint, PlatformAlert
from ..text import clip
from ..types import utcnow
from ..validation import MESSAGE_MAX

__all__ = [
    "RECOVERED",
    "RECOVERY_RUN_KEY",
    "record_runs",
    "resolve_by_run",
    "resolve_recovered",
    "watched",
]

#: The ``event`` of a report that says a run succeeded (spooled like a failure).
RECOVERED = "recovered"

#: In an alert's metadata: the one run (task id) whose end answers it (a hung run's alert).
RECOVERY_RUN_KEY = "recovery_task_id"

#: (task name, store id or None): a success of that task (for that store) resolves something.
Watched = tuple[str, int | None]


def watched(db: Session) -> set[Watched]:
    """What a success would resolve now: one cheap read of the open recoverable alerts.

    ``(task, None)`` for an alert without stores (any success of the task resolves it),
    ``(task, store)`` for each store an alert names.
    """
    rows = db.execute(
        select(PlatformAlert.recovery_task, PlatformAlert.affected_stores).where(
            PlatformAlert.recovery_task.is_not(None), PlatformAlert.is_resolved.is_(False)
        )
    ).all()
    found: set[Watched] = set()
    for task, stores in rows:
        ids = [s for s in stores or [] if isinstance(s, int)]
        found.update((task, store) for store in ids) if ids else found.add((task, None))
    return found


def record_runs(
    db: Session, reports: Sequence[FailureReport], *, cooldown: timedelta
) -> list[bool]:
    """Record a spooled batch: failures as ``record_failures`` does, then the recoveries.

    A recovery is not applied when the same batch holds a later failure of the same task
    and store (the run after the success failed again).
    """
    failures = [r for r in reports if r.event != RECOVERED]
    outcomes = iter(record_failures(db, failures, cooldown=cooldown) if failures else [])
    recoveries = [r for r in reports if r.event == RECOVERED]
    if recoveries:
        last_failed: dict[tuple[str, int | None], datetime] = {}
        for report in failures:
            key = (report.task_name, report.store_id)
            last_failed[key] = max(last_failed.get(key, report.occurred_at), report.occurred_at)
        resolve_recovered(
            db,
            [
                r
                for r in recoveries
                if (r.task_name, r.store_id) not in last_failed
                or last_failed[(r.task_name, r.store_id)] < r.occurred_at
            ],
        )
    return [True if r.event == RECOVERED else next(outcomes) for r in reports]


def resolve_recovered(db: Session, runs: Sequence[FailureReport]) -> list[PlatformAlert]:
    """Resolve the open alerts each successful run in ``runs`` recovers; returns them."""
    names = sorted({run.task_name for run in runs})
    if not names:
        return []
    candidates = db.scalars(
        select(PlatformAlert)
        .where(
            PlatformAlert.recovery_task.in_(names),
            PlatformAlert.is_resolved.is_(False),
        )
        .order_by(PlatformAlert.id)
    ).all()
    resolved = []
    for alert in candidates:
        run = next((r for r in runs if _recovers(r, alert)), None)
        if run is not None and _resolve(db, alert, run):
            resolved.append(alert)
    return resolved


def _recovers(run: FailureReport, alert: PlatformAlert) -> bool:
    if run.task_name != alert.recovery_task:
        return False
    pinned = (alert.alert_metadata or {}).get(RECOVERY_RUN_KEY)
    if pinned is not None and pinned != run.task_id:
        return False  # an alert about one run (a hung run): another run's success is not it
    stores = [s for s in alert.affected_stores or [] if isinstance(s, int)]
    return not stores or run.store_id in stores


def _resolve(db: Session, alert: PlatformAlert, run: FailureReport) -> bool:
    """Resolve ``alert`` with ``run`` unless someone else resolved it first."""
    return resolve_by_run(
        db,
        alert,
        task_name=run.task_name,
        task_id=run.task_id,
        finished_at=run.occurred_at,
        store_id=run.store_id,
    )


def resolve_by_run(
    db: Session,
    alert: PlatformAlert,
    *,
    task_name: str,
    task_id: str,
    finished_at: datetime,
    store_id: int | None = None,
    state: str = "SUCCESS",
    notes: str | None = None,
) -> bool:
    """Resolve ``alert`` automatically because run ``task_id`` of ``task_name`` finished.

    The one path every "a run answered it" resolution takes (a success the worker spooled,
    a beat entry's run finishing, a hung run ending): the run is kept in
    ``alert_metadata["resolved_by_run"]`` and ``alert.resolved`` goes to the channels that
    had the alert. False when someone else resolved it first.
    """
    now = utcnow()
    at = finished_at.isoformat().replace("+00:00", "Z")
    by_run: dict[str, Any] = {
        "task_name": task_name,
        "task_id": task_id,
        "store_id": store_id,
        "state": state,
        "finished_at": at,
    }
    if state == "SUCCESS":
        by_run["succeeded_at"] = at
    notes = clip(
        notes or f"Resolved automatically: {task_name} succeeded (run {task_id}).", MESSAGE_MAX
    )
    result = db.execute(
        update(PlatformAlert)
        .where(PlatformAlert.id == alert.id, PlatformAlert.is_resolved.is_(False))
        .values(
            is_resolved=True,
            resolved_at=now,
            resolution_notes=notes,
            alert_metadata={**(alert.alert_metadata or {}), "resolved_by_run": by_run},
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return False
    db.refresh(alert)
    inc_on_commit(
        db, "notifier_alerts_resolved_total", (alert.alert_type.value, alert.severity.value)
    )
    inc_on_commit(db, "notifier_alerts_auto_resolved_total", ())
    if alert.held_back_by_id is None:
        _announce(db, alert)
    return True


def _announce(db: Session, alert: PlatformAlert) -> int:
    """Queue ``alert.resolved`` to the endpoints (and admins) its earlier deliveries went to."""
    had = db.execute(
        select(Delivery.endpoint_id, Delivery.recipient_user_id)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.endpoint_id.is_not(None),
            Delivery.event_type != DeliveryEvent.ALERT_RESOLVED,
        )
        .distinct()
    ).all()
    recipients: dict[int, set[int]] = defaultdict(set)
    for endpoint_id, user_id in had:
        recipients[endpoint_id].update([user_id] if user_id is not None else [])
    if not recipients:
        return 0
    endpoints = db.scalars(
        select(DeliveryEndpoint)
        .where(DeliveryEndpoint.id.in_(list(recipients)), DeliveryEndpoint.is_enabled)
        .order_by(DeliveryEndpoint.id)
    ).all()
    payload = outbox.alert_payload(alert)
    event_id = outbox.new_id("evt")
    occurred_at = alert.resolved_at or utcnow()
    queued = 0
    for endpoint in endpoints:
        email = endpoint.channel is DeliveryChannel.EMAIL
        queued += outbox.queue(
            db,
            endpoint,
            DeliveryEvent.ALERT_RESOLVED,
            event_id,
            payload,
            occurred_at,
            alert_id=alert.id,
            recipients=sorted(recipients[endpoint.id]) if email else None,
        )
    return queued
