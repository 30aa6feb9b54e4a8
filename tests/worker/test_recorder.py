"""Recording a batch of events: one upsert per fingerprint, same result as one per event."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from notifier.worker.events import Event
from notifier.worker.recorder import record_batch
from sqlalchemy import select

from notifier import AdminNotification, Database, PlatformAlert


def _event(key: str, fingerprint: str, severity: str, store: int, message: str) -> Event:
    alert: dict[str, Any] = {
        "alert_type": "integration",
        "severity": severity,
        "title": f"{fingerprint} failed",
        "fingerprint": fingerprint,
        "description": message,
        "affected_stores": [store],
        "affected_systems": ["celery"],
        "metadata": {},
    }
    params = {
        "store_name": f"store {store}",
        "error_message": message,
        "store_id": store,
        "extra": {"alert_fingerprint": fingerprint},  # as worker.events writes it
    }
    return Event(key, "notify_order_sync_failure", params, alert, time.time())


def test_batch_counts_like_one_upsert_per_event(database: Database) -> None:
    events = [
        _event("k1", "sync:A", "warning", 1, "first"),
        _event("k2", "sync:B", "error", 9, "other"),
        _event("k3", "sync:A", "critical", 2, "second"),
        _event("k3", "sync:A", "critical", 2, "second"),  # reported twice: counted once
        _event("k4", "sync:A", "error", 1, "last"),
    ]
    assert record_batch(database, events, cooldown=timedelta(minutes=15)) == [True] * 5
    with database.session_scope() as db:
        alerts = {a.fingerprint: a for a in db.scalars(select(PlatformAlert))}
        notes = db.scalars(select(AdminNotification)).all()
    a = alerts["sync:A"]
    assert (a.occurrence_count, a.severity.value) == (3, "critical")
    assert a.affected_stores == [1, 2] and a.description == "last"
    assert alerts["sync:B"].occurrence_count == 1
    # one notification per fingerprint within the cooldown, the first event's
    assert sorted(n.dedup_key or "" for n in notes) == ["k1", "k2"]
    # a later batch increments and, within the cooldown, does not notify again
    record_batch(
        database, [_event("k5", "sync:A", "info", 3, "again")], cooldown=timedelta(minutes=15)
    )
    with database.session_scope() as db:
        again = db.scalars(select(PlatformAlert).where(PlatformAlert.fingerprint == "sync:A")).one()
        assert again.occurrence_count == 4 and again.severity.value == "critical"
        assert len(db.scalars(select(AdminNotification)).all()) == 2


def test_without_cooldown_every_event_notifies(database: Database) -> None:
    events = [_event(f"k{i}", "sync:A", "error", 1, f"m{i}") for i in range(4)]
    record_batch(database, events, cooldown=timedelta(0))
    with database.session_scope() as db:
        assert len(db.scalars(select(AdminNotification)).all()) == 4
        assert db.scalars(select(PlatformAlert)).one().occurrence_count == 4
