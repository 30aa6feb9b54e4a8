"""Faults in the dispatcher: killed mid-send, the database cut mid-batch; nothing is lost.

The contract is at least once: a delivery may be sent twice with the same ``webhook-id``, so a
receiver that deduplicates on that id sees every delivery exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier import Database, admin_notification_service
from notifier.delivery.dispatch import (
    DispatcherThread,
    DispatchSettings,
    dispatch_batches,
    dispatch_due,
)
from notifier.delivery.endpoints import endpoint_service
from notifier.enums import DeliveryStatus
from notifier.models import Delivery
from notifier.types import utcnow
from tests.conftest import proxied
from tests.notifier.conftest import Receiver

LEASE = timedelta(seconds=1)  # two minutes in production; short so the test is quick
SETTINGS = DispatchSettings(allow_private=True, claim_lease=LEASE, batch_size=5)
COUNT = 12

# A dispatcher in its own process, so the test can SIGKILL it mid-send.
_CHILD = """
import sys, threading
from datetime import timedelta
from notifier import Database
from notifier.delivery.dispatch import DispatchSettings, run_dispatcher
settings = DispatchSettings(allow_private=True, claim_lease=timedelta(seconds=1), batch_size=5)
run_dispatcher(Database(sys.argv[1]), settings, stop=threading.Event(), sweep_every=0.2)
"""


def _queue(database: Database, receiver: Receiver, count: int = COUNT) -> list[str]:
    """A webhook endpoint and ``count`` notifications for it; their deliveries' message ids."""
    with database.session_scope() as db:
        endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    for i in range(count):
        with database.session_scope() as db:
            admin_notification_service.create_notification(
                db, type="import_failure", title=f"Import {i} failed", message="bad row"
            )
    with database.session_scope() as db:
        ids = list(db.scalars(select(Delivery.message_id).order_by(Delivery.id)))
    assert len(ids) == count
    return ids


def _statuses(database: Database) -> list[DeliveryStatus]:
    with database.session_scope() as db:
        return list(db.scalars(select(Delivery.status).order_by(Delivery.id)))


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_dispatcher_killed_mid_send_is_replaced_and_every_delivery_arrives_once(
    database: Database, database_url: str, receiver: Receiver
) -> None:
    expected = _queue(database, receiver)
    receiver.then(204)
    receiver.then(204)
    receiver.stall(60.0)  # the third request hangs: the child is killed while it waits
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, database_url],
        cwd=os.getcwd(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Killed while the third send waits, once the first two are recorded (records run
        # beside the sends, so the third request can arrive before the second is recorded).
        _wait_for(
            lambda: (
                len(receiver.requests) >= 3
                and _statuses(database).count(DeliveryStatus.SUCCEEDED) >= 2
            )
        )
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    stalled = receiver.ids()[2]
    # A second dispatcher takes the killed one's claims once they lapse.
    time.sleep(LEASE.total_seconds() + 0.2)
    while dispatch_due(database, SETTINGS).total:
        pass
    assert _statuses(database) == [DeliveryStatus.SUCCEEDED] * COUNT
    ids = receiver.ids()
    assert set(ids) == set(expected)
    assert len(ids) == COUNT + 1  # the stalled one was sent again, with the same webhook-id
    assert ids.count(stalled) == 2


@pytest.mark.postgres
def test_the_database_cut_mid_batch_loses_nothing(
    pg_database: Database, postgres_url: str, receiver: Receiver
) -> None:
    expected = _queue(pg_database, receiver)
    for _ in range(COUNT):
        receiver.stall(0.1)  # slow enough that the cut lands between sends
    with proxied(postgres_url) as (proxy, url):
        database = Database(url, network_timeout=2)
        thread = DispatcherThread(database, SETTINGS, sweep_every=0.2)
        thread.start()
        try:
            _wait_for(lambda: len(receiver.requests) >= 3)
            proxy.cut()  # mid-batch: the send in flight finishes, recording it fails
            time.sleep(1.5)
            cut_at = len(receiver.requests)
            proxy.restore()
            _wait_for(lambda: _statuses(database) == [DeliveryStatus.SUCCEEDED] * COUNT)
        finally:
            thread.stop()
            database.dispose()
    ids = receiver.ids()
    assert cut_at < COUNT  # the cut really landed mid-run
    assert set(ids) == set(expected)
    # At least once: a send whose attempt could not be recorded may go out again; at most
    # ``in_flight`` sends are unrecorded at any moment.
    assert len(ids) <= COUNT + SETTINGS.in_flight


def test_a_batch_claimed_ahead_whose_claim_lapsed_is_not_sent_twice(
    database: Database, receiver: Receiver
) -> None:
    first, second = _queue(database, receiver, count=2)
    receiver.stall(3.0)  # the first send outlasts the lease; meanwhile the second waits
    settings = replace(SETTINGS, batch_size=1)

    def lapsed() -> bool:
        with database.session_scope() as db:
            claims = list(db.scalars(select(Delivery.claimed_until)))
        return all(c is not None and c < utcnow() for c in claims)

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(dispatch_batches, database, settings)
        _wait_for(lambda: len(receiver.requests) == 1)
        _wait_for(lapsed)  # both claims ran out, the second one's while it waited its turn
        # Another dispatcher takes both and sends them while the first send still hangs.
        assert dispatch_due(database, SETTINGS).counts == {"succeeded": 2}
        slow.result()
    assert _statuses(database) == [DeliveryStatus.SUCCEEDED] * 2
    ids = receiver.ids()
    assert ids.count(first) == 2  # sent when its claim lapsed mid-send (at least once)
    assert ids.count(second) == 1  # not sent again by the first dispatcher
