"""Job health checks on both databases: hung runs and queues nobody consumes, alerting once
and resolving by themselves; the run durations workers share for the p99 limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.health import (
    OverdueRun,
    QueueObservation,
    check_hung_runs,
    check_queues,
    overdue_runs,
    queue_reports,
    record_durations,
    record_heartbeat,
    shared_p99s,
)
from notifier.health.durations import KEEP, MIN_SAMPLES
from notifier.models import PlatformAlert

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def _run(task_id: str = "abc", host: str = "w1@box") -> OverdueRun:
    return OverdueRun(
        task_id=task_id,
        task_name="shop.import_products",
        hostname=host,
        started_at=T0 - timedelta(minutes=42),
        limit_seconds=600,
        limit_source="floor",
        pid=4242,
        arguments={"store_id": 7, "api_key": "[redacted]"},
    )


def _alerts(db: Session) -> dict[str, PlatformAlert]:
    return {a.fingerprint: a for a in db.scalars(select(PlatformAlert))}


def _beat(db: Session, now: datetime, *runs: OverdueRun, queues: list[str] | None = None) -> None:
    record_heartbeat(
        db, "w1@box", pid=1, queues=queues or ["celery"], overdue=list(runs), ttl=TTL, now=now
    )


def test_a_hung_run_alerts_once_and_resolves_when_it_finishes(db_session: Session) -> None:
    _beat(db_session, T0, _run())
    assert check_hung_runs(db_session, T0).opened == ["run:overdue:abc"]
    _beat(db_session, T0 + timedelta(seconds=10), _run())
    assert check_hung_runs(db_session, T0 + timedelta(seconds=10)).opened == []

    alert = _alerts(db_session)["run:overdue:abc"]
    assert (alert.alert_type.value, alert.severity.value) == ("performance", "error")
    assert alert.title == "Task shop.import_products is running past its limit"
    assert alert.occurrence_count == 1
    description = alert.description or ""
    assert "has run for 42m 10s on worker w1@box (pid 4242)" in description
    assert "'api_key': '[redacted]'" in description
    assert [r.task_id for r in overdue_runs(db_session, T0)] == ["abc"]

    _beat(db_session, T0 + timedelta(seconds=20))
    assert check_hung_runs(db_session, T0 + timedelta(seconds=20)).resolved == ["run:overdue:abc"]
    db_session.refresh(alert)
    assert alert.is_resolved
    assert alert.resolution_notes == "resolved automatically: run finished"


def test_a_worker_that_stops_reporting_resolves_its_runs_alerts(db_session: Session) -> None:
    _beat(db_session, T0, _run())
    check_hung_runs(db_session, T0)
    later = T0 + TTL + timedelta(seconds=1)
    assert overdue_runs(db_session, later) == []
    check_hung_runs(db_session, later)
    alert = _alerts(db_session)["run:overdue:abc"]
    assert alert.is_resolved
    assert "its worker stopped reporting" in (alert.resolution_notes or "")


def test_a_queue_with_messages_and_no_consumer_alerts_until_drained(db_session: Session) -> None:
    _beat(db_session, T0, queues=["celery"])
    seen = [QueueObservation("celery", 3, "h1"), QueueObservation("reports", 2, "r1")]
    outcome = check_queues(db_session, seen, now=T0)
    assert outcome.opened == ["queue:no-consumer:reports"]
    alert = _alerts(db_session)["queue:no-consumer:reports"]
    assert (alert.alert_type.value, alert.severity.value) == ("capacity", "critical")
    assert alert.alert_metadata["depth"] == 2

    later = T0 + timedelta(seconds=95)
    _beat(db_session, later, queues=["celery"])
    check_queues(db_session, [QueueObservation("reports", 5, "r1")], now=later)
    db_session.refresh(alert)
    assert alert.occurrence_count == 1
    assert "holds 5 message(s); the oldest has waited at least 1m 35s" in (alert.description or "")
    [celery, reports] = queue_reports(db_session, later)
    assert (reports.depth, reports.consumers, reports.oldest_age) == (5, 0, 95.0)
    assert (celery.depth, celery.consumers) == (3, 1)

    check_queues(db_session, [QueueObservation("reports", 0)], now=later)
    db_session.refresh(alert)
    assert alert.is_resolved
    assert alert.resolution_notes == "resolved automatically: queue drained"


def test_a_consumed_queue_whose_head_waits_too_long_alerts(db_session: Session) -> None:
    limit = timedelta(minutes=5)
    for seconds in (0, 200, 301):
        now = T0 + timedelta(seconds=seconds)
        _beat(db_session, now, queues=["celery"])
        check_queues(db_session, [QueueObservation("celery", 4, "same")], max_age=limit, now=now)
    alert = _alerts(db_session)["queue:stale:celery"]
    assert not alert.is_resolved
    assert "past its limit of 5m 00s with 1 worker(s) consuming it" in (alert.description or "")

    now = T0 + timedelta(seconds=310)  # the head moved: the new one has waited 0s
    _beat(db_session, now, queues=["celery"])
    check_queues(db_session, [QueueObservation("celery", 4, "next")], max_age=limit, now=now)
    db_session.refresh(alert)
    assert alert.is_resolved
    assert "queue:no-consumer:celery" not in _alerts(db_session)


def test_without_a_peek_the_wait_counts_while_nothing_leaves(db_session: Session) -> None:
    # RabbitMQ: no head digest; the broker counts consumers itself.
    for seconds, depth in ((0, 2), (60, 3), (120, 1), (150, 1)):
        now = T0 + timedelta(seconds=seconds)
        check_queues(db_session, [QueueObservation("q", depth, None, 1)], now=now)
    [report] = queue_reports(db_session, T0 + timedelta(seconds=150))
    assert (report.consumers, report.oldest_age) == (1, 30.0)
    assert _alerts(db_session) == {}


def test_durations_from_every_worker_add_up_to_one_bounded_p99(db_session: Session) -> None:
    record_durations(db_session, {"shop.import": [10.0] * (MIN_SAMPLES - 5)})
    assert shared_p99s(db_session, ["shop.import"]) == {}  # too few to tell yet
    # A second worker (or the same one restarted) adds its own; nothing for an empty list.
    record_durations(db_session, {"shop.import": [30.0] * 5, "shop.sync": []})
    assert shared_p99s(db_session, ["shop.import", "shop.sync"]) == {"shop.import": 30.0}
    # The latest KEEP durations count: the old ones leave.
    record_durations(db_session, {"shop.import": [2.5] * KEEP})
    assert shared_p99s(db_session, ["shop.import"]) == {"shop.import": 2.5}
