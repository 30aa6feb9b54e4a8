"""Recording attempts on PostgreSQL: two dispatchers never deadlock on endpoint rows.

A record that stamps one endpoint healthy and marks another failing takes both rows. Two
dispatchers doing that in opposite order each hold the row the other waits for, PostgreSQL
kills one transaction, its record is lost and its sends go out again. So a record takes
every endpoint row it will change first, in id order: while it waits for one, it holds
none of the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from notifier import Database, admin_notification_service
from notifier.delivery.attempts import Outcome, Recorder
from notifier.delivery.endpoints import endpoint_service
from notifier.delivery.settings import DispatchReport
from notifier.enums import DeliveryStatus
from notifier.models import Delivery, DeliveryEndpoint

pytestmark = pytest.mark.postgres

FAILED = Outcome("retry", response_status=503, error_class="HTTP503", error="answered 503")


def _lock(database: Database, endpoint_id: int) -> Session:
    """A session holding ``endpoint_id``'s row until it ends."""
    session = database.sessionmaker()
    session.execute(
        select(DeliveryEndpoint.id).where(DeliveryEndpoint.id == endpoint_id).with_for_update()
    )
    return session


def _wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _waiting_for_a_lock(database: Database) -> bool:
    with database.engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def _attempts(database: Database, delivery_id: int) -> int:
    with database.session_scope() as db:
        return int(db.scalar(select(Delivery.attempt_count).where(Delivery.id == delivery_id)) or 0)


def test_a_record_waiting_for_one_endpoint_holds_none_of_the_others(
    pg_database: Database,
) -> None:
    with pg_database.session_scope() as db:
        for name in ("first", "second", "gate"):  # ids in this order
            endpoint_service.create(
                db, name=name, channel="webhook", url="http://127.0.0.1:9/", allow_private=True
            )
        admin_notification_service.create_notification(
            db, type="import_failure", title="Import 1 failed", message="bad row"
        )
    with pg_database.session_scope() as db:
        rows = list(db.scalars(select(Delivery).order_by(Delivery.endpoint_id)))
        endpoints = list(db.scalars(select(DeliveryEndpoint).order_by(DeliveryEndpoint.id)))
        db.expunge_all()
    (to_first, to_second, to_gate), (first, second, gate) = rows, endpoints
    report = DispatchReport()
    recorder = Recorder(pg_database, report, in_flight=4)
    held_first = _lock(pg_database, first.id)
    held_gate = _lock(pg_database, gate.id)
    try:
        # The recorder stalls on the gate, so the next two attempts are recorded together:
        # one stamps ``second`` healthy, the other marks ``first`` failing.
        with recorder.slot():
            recorder.record(to_gate, gate, FAILED)
        _wait_for(lambda: _waiting_for_a_lock(pg_database), "the gate held nothing up")
        with recorder.slot():
            recorder.record(to_second, second, Outcome("succeeded", response_status=204))
        with recorder.slot():
            recorder.record(to_first, first, FAILED)
        held_gate.commit()
        _wait_for(lambda: _attempts(pg_database, to_gate.id) == 1, "the gate's record is lost")
        _wait_for(lambda: _waiting_for_a_lock(pg_database), "the record did not wait for first")
        with pg_database.engine.connect() as connection:
            try:  # ``second`` is free: whoever holds ``first`` can take it, no cycle
                connection.execute(
                    select(DeliveryEndpoint.id)
                    .where(DeliveryEndpoint.id == second.id)
                    .with_for_update(nowait=True)
                )
            except OperationalError as exc:
                pytest.fail(f"the record waiting for the first endpoint holds the second: {exc}")
            connection.rollback()
    finally:
        held_first.close()
        held_gate.close()
    recorder.finish()
    assert dict(report.counts) == {"retry": 2, "succeeded": 1}
    with pg_database.session_scope() as db:
        statuses = {
            d.endpoint_id: (d.status, d.attempt_count) for d in db.scalars(select(Delivery))
        }
        failing = {e.id: e.failing_since is not None for e in db.scalars(select(DeliveryEndpoint))}
    assert statuses == {
        first.id: (DeliveryStatus.PENDING, 1),
        second.id: (DeliveryStatus.SUCCEEDED, 1),
        gate.id: (DeliveryStatus.PENDING, 1),
    }
    assert failing == {first.id: True, second.id: False, gate.id: True}
