"""Counting hooks for Prometheus, optional: without ``prometheus_client`` every hook is a no-op.

The core never imports the client at module level; the first count imports it. Counts that
belong to a database write (notifications created, alerts opened, counted, resolved) are
kept on the session and added when it commits, so a rolled-back batch counts nothing.

With ``PROMETHEUS_MULTIPROC_DIR`` set (before the process starts), each process writes its
counts to files there and a scrape adds up every gunicorn worker and Celery child.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_PENDING = "notifier_metrics_pending"
_lock = threading.Lock()

#: name -> (kind, help, label names); kind is "counter", "gauge" or "histogram".
DEFINITIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "notifier_failures_captured_total": (
        "counter",
        "Task failures the worker captured, by kind of failure.",
        ("kind",),
    ),
    "notifier_notifications_created_total": (
        "counter",
        "Notifications created (committed), by type and priority.",
        ("type", "priority"),
    ),
    "notifier_alerts_opened_total": (
        "counter",
        "Platform alerts opened, by type and severity.",
        ("alert_type", "severity"),
    ),
    "notifier_alerts_incremented_total": (
        "counter",
        "Occurrences added to an open platform alert, by type and severity.",
        ("alert_type", "severity"),
    ),
    "notifier_alerts_resolved_total": (
        "counter",
        "Platform alerts resolved, by type and severity.",
        ("alert_type", "severity"),
    ),
    "notifier_login_failures_total": ("counter", "Failed sign-ins on the login form.", ()),
    "notifier_token_failures_total": (
        "counter",
        "API requests with an unknown or revoked bearer token.",
        (),
    ),
    "notifier_api_request_duration_seconds": (
        "histogram",
        "Time to answer an API request, by route template, method and status.",
        ("route", "method", "status"),
    ),
    "notifier_spool_pending_events": (
        "gauge",
        "Failures waiting in this host's spool to be recorded (set by the drainer).",
        (),
    ),
    "notifier_spool_dead_events": (
        "gauge",
        "Spooled failures that can never be recorded, in the spool's dead/ folder.",
        (),
    ),
    "notifier_drainer_lag_seconds": (
        "gauge",
        "Age of the oldest failure still waiting in the spool (0 when empty).",
        (),
    ),
    "notifier_delivery_attempts_total": (
        "counter",
        "Delivery attempts recorded by the dispatcher, by channel and outcome "
        "(succeeded, retry, failed).",
        ("channel", "outcome"),
    ),
    "notifier_held_back_total": (
        "counter",
        "Symptoms held back by an open root-cause alert (recorded, not delivered), by kind "
        "(alert, notification).",
        ("kind",),
    ),
    "notifier_alerts_auto_resolved_total": (
        "counter",
        "Platform alerts resolved by the next success of their task.",
        (),
    ),
}


@cache
def _metric(name: str) -> Any:
    """The prometheus_client metric ``name``, created once; None without the client."""
    try:
        import prometheus_client
    except ImportError:  # metrics are off: the core runs without the client
        return None
    kind, help_text, labels = DEFINITIONS[name]
    if kind == "histogram":
        return prometheus_client.Histogram(
            name.removesuffix("_seconds"),
            help_text,
            labels,
            unit="seconds",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
    if kind == "gauge":
        # One value per host (each drainer sees the whole spool): the highest of the live
        # processes, when a multiprocess scrape adds processes up.
        return prometheus_client.Gauge(name, help_text, labels, multiprocess_mode="livemax")
    return prometheus_client.Counter(name.removesuffix("_total"), help_text, labels)


def inc(name: str, *labels: str, amount: float = 1.0) -> None:
    """Add ``amount`` to counter ``name`` now (no-op without prometheus_client)."""
    with _lock:
        metric = _metric(name)
    if metric is None:
        return
    (metric.labels(*labels) if labels else metric).inc(amount)


def observe(name: str, value: float, *labels: str) -> None:
    """Record ``value`` in histogram ``name`` (no-op without prometheus_client)."""
    with _lock:
        metric = _metric(name)
    if metric is not None:
        metric.labels(*labels).observe(value)


def set_gauge(name: str, value: float, *labels: str) -> None:
    """Set gauge ``name`` (no-op without prometheus_client)."""
    with _lock:
        metric = _metric(name)
    if metric is not None:
        (metric.labels(*labels) if labels else metric).set(value)


def prepare(*names: str) -> None:
    """Import the client and make these metrics now rather than at their first count.

    A worker's main process calls it before it forks its pool: each pool child then
    inherits them, and its first failure does not stall importing ``prometheus_client``
    (0.05-0.4 s of CPU in every child, measured in BENCHMARKS.md, Worker).
    """
    for name in names:
        _metric(name)


def process_exiting(pid: int | None = None) -> None:
    """Drop a finished process's live gauges from a multiprocess scrape (its counts stay)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def inc_on_commit(db: Session, name: str, labels: Sequence[str], amount: float = 1.0) -> None:
    """Add to counter ``name`` when ``db`` commits; nothing if it rolls back."""
    db.info.setdefault(_PENDING, []).append((name, tuple(labels), amount))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for name, labels, amount in session.info.pop(_PENDING, ()):
        inc(name, *labels, amount=amount)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


__all__ = [
    "DEFINITIONS",
    "inc",
    "inc_on_commit",
    "observe",
    "prepare",
    "process_exiting",
    "set_gauge",
]
