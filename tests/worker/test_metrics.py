"""The worker's metrics: failures captured by kind, and the spool's depth, dead letters and lag."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from notifier.worker.events import Event
from notifier.worker.recorder import record_batch
from notifier.worker.spool import Drainer, Spool
from prometheus_client import REGISTRY

from notifier import Database


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _failure(task_id: str, kind: str, age: float = 0.0) -> Event:
    params = {"error_type": "Boom", "error_message": "boom"}
    return Event(
        f"celery:{task_id}:{kind}", "notify_critical_error", params, None, time.time() - age
    )


def test_spool_metrics_follow_what_is_waiting_and_recorded(
    tmp_path: Path, database: Database
) -> None:
    before = _sample("notifier_failures_captured_total", kind="time_limit")
    spool = Spool(tmp_path / "spool")
    spool.put(_failure("a", "time_limit", age=30))
    spool.put(_failure("b", "time_limit"))
    (spool.dead / "broken.json").write_text("{")
    assert _sample("notifier_failures_captured_total", kind="time_limit") - before == 2

    drainer = Drainer(spool, lambda events: record_batch(database, events, cooldown=timedelta()))
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
