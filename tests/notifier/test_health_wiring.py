"""Job health wired together: the scheduler and queue alerts are root causes, a missed run
is their symptom (recorded, shown held back, not delivered, summarised on resolve), misses
and hung runs resolve on their task's next run, and the hung-run check runs under the
watcher's lease. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.health import (
    BEAT_FINGERPRINT,
    NO_CONSUMER_FINGERPRINT,
    EntrySpec,
    QueueObservation,
    beat_ticked,
    check_queues,
    check_schedule,
    sync_entries,
)
from notifier.models import PlatformAlert

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _spec(
    name: str, period: float = 60.0, grace: float = 60.0, queue: str | None = None
) -> EntrySpec:
    return EntrySpec(
        name=name,
        task=f"jobs.{name}",
        schedule_text=f"freq: {period:g} seconds",
        period_seconds=period,
        grace_seconds=grace,
        first_due_at=T0 + timedelta(seconds=period),
    )


def _alert(db: Session, fingerprint: str) -> PlatformAlert:
    query = select(PlatformAlert).where(PlatformAlert.fingerprint == fingerprint)
    return db.scalars(query.order_by(PlatformAlert.id.desc())).first()  # type: ignore[return-value]


def test_the_scheduler_and_a_queue_without_consumer_are_root_causes(db_session: Session) -> None:
    db = db_session
    sync_entries(db, [_spec("a")], now=T0)
    beat_ticked(db, stale_after_seconds=10, at=T0)
    check_schedule(db, T0 + timedelta(seconds=130))
    assert _alert(db, BEAT_FINGERPRINT).explains == "scheduler"
    check_queues(db, [QueueObservation(name="imports", depth=3)], now=T0)
    assert _alert(db, f"{NO_CONSUMER_FINGERPRINT}imports").explains == "queue:imports"
