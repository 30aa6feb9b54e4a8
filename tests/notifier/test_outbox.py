"""The outbox learns whether any endpoint is enabled from the notification's own INSERT."""

from __future__ import annotations

from sqlalchemy import select

from notifier import Database, admin_notification_service
from notifier.delivery.endpoints import endpoint_service
from notifier.models import Delivery
from notifier.outbox import queued_in
from tests.notifier.conftest import Receiver


def _notify(database: Database) -> tuple[int, int]:
    """A notification in a one-row transaction: its id and how many deliveries it queued."""
    with database.session_scope() as db:
        notification = admin_notification_service.create_notification(
            db, type="import_failure", title="Import failed", message="bad row"
        )
        return notification.id, queued_in(db)


def test_an_endpoint_another_process_committed_gets_the_next_notification(
    database: Database, receiver: Receiver
) -> None:
    web = Database(database.url)  # another process: its own engine and pool
    try:
        assert _notify(database)[1] == 0  # no endpoint yet: nothing queued
        with web.session_scope() as db:
            endpoint, _ = endpoint_service.create(
                db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
            )
            endpoint_id = endpoint.id
        second, queued = _notify(database)
        assert queued == 1
        with database.session_scope() as db:
            rows = list(db.execute(select(Delivery.notification_id, Delivery.endpoint_id)))
        assert [tuple(row) for row in rows] == [(second, endpoint_id)]
        # disabled elsewhere: the next notification queues nothing for it
        with web.session_scope() as db:
            found = endpoint_service.get(db, endpoint_id)
            assert found is not None
            endpoint_service.set_enabled(db, found, enabled=False)
        assert _notify(database)[1] == 0
    finally:
        web.dispose()
