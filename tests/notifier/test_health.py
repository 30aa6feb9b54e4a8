"""Job health checks on both databases: hung runs and queues nobody consumes, alerting once
and resolving by themselves; the run durations workers share for the p99 limit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from notifier import Database
from notifier.health import (
    OverdueRun,
    QueueObservation,
    broker_reachable,
    broker_scope,
    broker_unreachable,
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


def test_an_observation_older_than_the_last_check_changes_nothing(db_session: Session) -> None:
    # Two workers probe the same queue: the one whose answer is older commits last.
    newer = QueueObservation("reports", 0, seen_at=T0 + timedelta(seconds=2))
    older = QueueObservation("reports", 3, "r1", seen_at=T0 + timedelta(seconds=1))
    check_queues(db_session, [newer], now=T0 + timedelta(seconds=3))
    assert check_queues(db_session, [older], now=T0 + timedelta(seconds=3)).opened == []
    [report] = queue_reports(db_session, T0 + timedelta(seconds=3))
    assert (report.depth, report.checked_at) == (0, T0 + timedelta(seconds=2))
    assert _alerts(db_session) == {}


def test_two_workers_checking_one_queue_at_once_count_it_once(pg_database: Database) -> None:
    """The second check waits for the first one's commit, then sees its alert."""
    seen = [QueueObservation("orphans", 2, "h1", seen_at=T0)]
    later = [QueueObservation("orphans", 2, "h1", seen_at=T0 + timedelta(seconds=1))]
    with pg_database.sessionmaker() as first:
        check_queues(first, seen, now=T0)  # opened, not committed yet

        def second() -> None:
            with pg_database.session_scope() as db:
                check_queues(db, later, now=T0 + timedelta(seconds=1))

        thread = threading.Thread(target=second)
        thread.start()
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with pg_database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"  # pg_stat_activity is read once per transaction
        ) as watcher:
            deadline = time.monotonic() + 10
            while not watcher.scalar(waiting) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert watcher.scalar(waiting) == 1  # the second check waits for the first
        first.commit()
        thread.join(10)
        assert not thread.is_alive()
    with pg_database.session_scope() as db:
        [alert] = db.scalars(select(PlatformAlert)).all()
        assert (alert.fingerprint, alert.occurrence_count) == ("queue:no-consumer:orphans", 1)


def test_the_broker_alert_stays_open_while_a_live_worker_cannot_reach_it(
    db_session: Session,
) -> None:
    for host in ("a@box", "b@box", "c@box"):
        record_heartbeat(db_session, host, pid=1, queues=[], overdue=[], ttl=TTL, now=T0)
        broker_unreachable(
            db_session, tag="t1", url="redis://u:**@mq:6379/0", hostname=host, since=T0
        )
    broker_unreachable(
        db_session, tag="t1", url="redis://u:**@mq:6379/0", hostname="a@box", since=T0
    )
    [alert] = _alerts(db_session).values()
    assert (alert.occurrence_count, alert.explains) == (3, broker_scope("t1"))
    assert alert.alert_metadata["unreachable_from"] == ["a@box", "b@box", "c@box"]
    assert "redis://u:**@mq:6379/0 could not be reached from a@box, b@box, c@box" in (
        alert.description or ""
    )
    assert broker_reachable(db_session, tag="t1", hostname="a@box", now=T0) is None
    later = T0 + TTL + timedelta(seconds=1)  # c@box stopped reporting: it holds nothing open
    record_heartbeat(db_session, "b@box", pid=1, queues=[], overdue=[], ttl=TTL, now=later)
    assert broker_reachable(db_session, tag="t1", hostname="a@box", now=later) is None
    assert alert.alert_metadata["unreachable_from"] == ["b@box"]
    assert broker_reachable(db_session, tag="t1", hostname="b@box", now=later) is alert
    assert alert.is_resolved


def test_durations_from_every_worker_add_up_to_one_bounded_p99(db_session: Session) -> None:
    record_durations(db_session, {"shop.import": [10.0] * (MIN_SAMPLES - 5)})
    assert shared_p99s(db_session, ["shop.import"]) == {}  # too few to tell yet
    # A second worker (or the same one restarted) adds its own; nothing for an empty list.
    record_durations(db_session, {"shop.import": [30.0] * 5, "shop.sync": []})
    assert shared_p99s(db_session, ["shop.import", "shop.sync"]) == {"shop.import": 30.0}
    # The latest KEEP durations count: the old ones leave.
    record_durations(db_session, {"shop.import": [2.5] * KEEP})
    assert shared_p99s(db_session, ["shop.import"]) == {"shop.import": 2.5}
