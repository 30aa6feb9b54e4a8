"""Change notices on Redis: one per commit that wrote notifications or alerts, after it.

Real SQLite file and real Redis (this run's db); a raw Redis subscriber stands for the web
process's hub.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import func, select, update

from notifier import Database, admin_notification_service, platform_alert_service
from notifier.live import CHANGES_CHANNEL
from notifier.models import AdminNotification
from tests.conftest import _empty_tables


@pytest.fixture
def database(sqlite_url: str, redis_url: str) -> Iterator[Database]:
    """The SQLite store, publishing its commits on this run's Redis."""
    db = Database(sqlite_url, live_redis_url=redis_url)
    _empty_tables(db)
    yield db
    _empty_tables(db)
    db.dispose()


@pytest.fixture
def notices(redis_url: str) -> Iterator[redis.client.PubSub]:
    """A subscriber on the change channel, subscribed before the test writes."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(CHANGES_CHANNEL)
    pubsub.get_message(timeout=5)  # the subscription's confirmation
    yield pubsub
    pubsub.close()
    client.close()


def _next(pubsub: redis.client.PubSub, timeout: float = 5.0) -> str | None:
    message = pubsub.get_message(timeout=timeout)
    return None if message is None else message["data"].decode()


def test_a_committed_notification_is_announced_once_after_the_commit(
    database: Database, notices: redis.client.PubSub
) -> None:
    with database.session_scope() as db:
        admin_notification_service.notify_critical_error(db, error_type="A", error_message="a")
        admin_notification_service.notify_critical_error(db, error_type="B", error_message="b")
    assert _next(notices) == "n"
    # Sent after the commit: another connection already sees both rows.
    with Database(database.url).sessionmaker() as other:
        assert other.scalar(select(func.count()).select_from(AdminNotification)) == 2
    assert _next(notices, timeout=0.3) is None  # one notice for the transaction


def test_rollbacks_and_reads_announce_nothing(
    database: Database, notices: redis.client.PubSub
) -> None:
    with pytest.raises(RuntimeError), database.session_scope() as db:
        admin_notification_service.notify_critical_error(db, error_type="A", error_message="a")
        db.flush()
        raise RuntimeError("the caller gave up")
    with database.session_scope() as db:
        assert admin_notification_service.get_unread_count(db) == 0
    assert _next(notices, timeout=0.5) is None


def test_core_updates_and_alert_upserts_are_announced(
    database: Database, notices: redis.client.PubSub
) -> None:
    with database.session_scope() as db:
        admin_notification_service.notify_critical_error(db, error_type="A", error_message="a")
    assert _next(notices) == "n"
    with database.session_scope() as db:
        db.execute(update(AdminNotification).values(is_read=True))
    assert _next(notices) == "u"
    with database.session_scope() as db:
        platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="error", title="Queue stuck", fingerprint="q"
        )
    assert _next(notices) == "a"


def test_a_redis_that_is_down_costs_the_writer_nothing_but_a_warning(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # From the start: emptying the tables is a write that already fails to publish (and
    # quiets the publisher for a while), whatever level an earlier test left on the root.
    caplog.set_level(logging.WARNING, logger="notifier.live.pubsub")
    database = Database(sqlite_url, live_redis_url="redis://127.0.0.1:1/0")
    try:
        _empty_tables(database)
        with database.session_scope() as db:
            admin_notification_service.notify_critical_error(db, error_type="A", error_message="a")
        with database.session_scope() as db:
            assert admin_notification_service.get_unread_count(db) == 1
        assert "could not publish a change notice" in caplog.text
    finally:
        _empty_tables(database)
        database.dispose()


def test_postgresql_needs_no_redis_its_triggers_notify(postgres_url: str, redis_url: str) -> None:
    database = Database(postgres_url, live_redis_url=redis_url)
    try:
        assert not database.publishes_changes
    finally:
        database.dispose()


def test_a_hosts_engine_publishes_while_lent_and_not_after(
    sqlite_url: str, redis_url: str, notices: redis.client.PubSub
) -> None:
    host = Database(sqlite_url)  # stands for the host's own engine (Flask-SQLAlchemy)
    lent = Database.for_engine(host.engine, live_redis_url=redis_url)
    try:
        with host.session_scope() as db:  # the host's own session on that engine
            admin_notification_service.notify_critical_error(db, error_type="A", error_message="a")
        assert _next(notices) == "n"
        lent.dispose()  # the notifier lets go of the engine; the host keeps using it
        with host.session_scope() as db:
            admin_notification_service.notify_critical_error(db, error_type="B", error_message="b")
        assert _next(notices, timeout=0.3) is None
    finally:
        _empty_tables(host)
        host.dispose()
