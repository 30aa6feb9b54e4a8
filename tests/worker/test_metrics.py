"""The worker's metrics: failures captured by kind, and the spool's depth, dead letters and lag."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from notifier.worker.spool import Drainer, Spool
from prometheus_client import REGISTRY

from notifier import Database, FailureKind, FailureReport, JobKind, record_failures
from notifier.types import utcnow


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _failure(task_id: str, age: float = 0.0) -> FailureReport:
    return FailureReport(
        key=f"celery:{task_id}:failure",
        job=JobKind.GENERIC,
        kind=FailureKind.TIME_LIMIT,
        task_name="shop.nightly",
        task_id=task_id,
        occurred_at=utcnow() - timedelta(seconds=age),
        message="hard time limit",
    )


def _record(database: Database, reports: list[FailureReport]) -> list[bool]:
    with database.session_scope() as db:
        return record_failures(db, reports, cooldown=timedelta())


def test_spool_metrics_follow_what_is_waiting_and_recorded(
    tmp_path: Path, database: Database
) -> None:
    before = _sample("notifier_failures_captured_total", kind="time_limit")
    spool = Spool(tmp_path / "spool")
    spool.put(_failure("a", age=30))
    spool.put(_failure("b"))
    (spool.dead / "broken.json").write_text("{")
    assert _sample("notifier_failures_captured_total", kind="time_limit") - before == 2

    drainer = Drainer(spool, lambda reports: _record(database, reports))
    drainer.report()
    assert _sample("notifier_spool_pending_events") == 2
    assert _sample("notifier_spool_dead_events") == 1
    assert 29 < _sample("notifier_drainer_lag_seconds") < 120

    drainer._reported = 0.0  # the next report would wait a second; do not sleep in a test
    drainer.drain()
    drainer._reported = 0.0
    drainer.report()
    assert _sample("notifier_spool_pending_events") == 0
    assert _sample("notifier_drainer_lag_seconds") == 0
