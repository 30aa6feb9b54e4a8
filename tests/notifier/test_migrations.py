"""The Alembic migrations and the models describe the same schema, on both databases.

A new database is built from the models (``notifier init-db`` on an empty schema); one made
by an earlier release is upgraded revision by revision. So the comparisons below run on a
database replayed from the first revision to 0012 (the unprefixed tables) and then upgraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from notifier.web import create_app
from sqlalchemy import inspect, text

from notifier.db import Database, make_engine
from notifier.delivery.dispatch import DispatchSettings, dispatch_due
from notifier.delivery.endpoints import endpoint_service
from notifier.enums import JobKind
from notifier.failures import FailureReport, record_failures
from notifier.migrate import VERSION_TABLE, upgrade
from notifier.models import Base
from tests.conftest import scratch_postgres
from tests.notifier.conftest import Receiver
from tests.notifier.test_cli import _notifier
from tests.web.conftest import API, Admin, make_admin, make_token

#: The last revision before the tables were prefixed: the schema of every earlier release.
UNPREFIXED = "0012"


@pytest.fixture(scope="module")
def replayed_postgres_url() -> Iterator[str]:
    """A PostgreSQL database migrated from nothing through every revision."""
    with scratch_postgres("notifier_replayed") as url:
        upgrade(url, UNPREFIXED)
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def replayed_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file migrated from nothing through every revision."""
    url = f"sqlite:///{tmp_path_factory.mktemp('replayed') / 'notifier.db'}"
    upgrade(url, UNPREFIXED)
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def replayed_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on a replayed SQLite file and PostgreSQL database."""
    return str(request.getfixturevalue(f"replayed_{request.param}_url"))


# SQLite cannot reflect the lower(email) index; test_users covers it on both databases.
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_models_and_migrations_agree(replayed_url: str) -> None:
    engine = make_engine(replayed_url)
    with engine.connect() as conn:
        # Our revision lives in our own version table, which autogenerate skips by name.
        opts = {"compare_type": True, "version_table": VERSION_TABLE}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_twice_changes_nothing(replayed_url: str) -> None:
    upgrade(replayed_url)  # the fixture already migrated once
    engine = make_engine(replayed_url)
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    assert {"notifier_admin_users", "notifier_deliveries", "notifier_platform_alerts"} <= tables
    assert not tables & {"admin_users", "deliveries", "platform_alerts", "digests"}
    indexes = {ix["name"] for ix in inspector.get_indexes("notifier_platform_alerts")}
    assert "uq_notifier_platform_alerts_open_fingerprint" in indexes
    engine.dispose()


def _sqlite_names(url: str) -> set[tuple[str, str, str]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        query = text("SELECT type, name, tbl_name FROM sqlite_master WHERE tbl_name <> :version")
        names = {tuple(row) for row in conn.execute(query, {"version": VERSION_TABLE})}
    engine.dispose()
    return names  # type: ignore[return-value]


def test_replayed_sqlite_has_the_models_tables_and_indexes(
    replayed_sqlite_url: str, tmp_path: Path
) -> None:
    built = f"sqlite:///{tmp_path / 'built.db'}"
    engine = make_engine(built)
    Base.metadata.create_all(engine)
    engine.dispose()
    assert _sqlite_names(replayed_sqlite_url) == _sqlite_names(built)


INDEXES = text(
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " AND tablename <> :version ORDER BY indexname"
)
# Every constraint (primary keys, foreign keys, unique, checks) with its definition, the
# sequences behind the serial ids, and the triggers with the function they call.
CONSTRAINTS = text(
    "SELECT conname, conrelid::regclass::text || ' ' || pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    " AND conrelid::regclass::text <> :version"
)
SEQUENCES = text(
    "SELECT c.relname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
    " JOIN pg_class c ON c.oid = d.adrelid WHERE pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval%'"
    " AND c.relname <> :version"
)
TRIGGERS = text("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal")
FUNCTION = text("SELECT prosrc FROM pg_proc WHERE proname = 'notifier_notify_change'")


def test_migrations_build_the_models_schema_exactly_on_postgresql(
    replayed_postgres_url: str, empty_postgres_url: str
) -> None:
    # compare_metadata ignores INCLUDE columns, partial-index conditions and the names of
    # constraints and sequences; the definitions PostgreSQL keeps do not.
    built = make_engine(empty_postgres_url)
    Base.metadata.create_all(built)
    migrated = make_engine(replayed_postgres_url)
    schemas = []
    for engine in (built, migrated):
        with engine.connect() as conn:
            params = {"version": VERSION_TABLE}
            schemas.append(
                {
                    "indexes": dict(conn.execute(INDEXES, params).all()),
                    "constraints": dict(conn.execute(CONSTRAINTS, params).all()),
                    "sequences": set(conn.execute(SEQUENCES, params).all()),
                    "triggers": dict(conn.execute(TRIGGERS).all()),
                    "function": conn.scalar(FUNCTION).strip(),
                }
            )
        engine.dispose()
    assert schemas[0] == schemas[1]
    indexes = schemas[1]["indexes"]
    counts = indexes["ix_notifier_platform_alerts_counts"]
    assert "INCLUDE (snoozed_until, acknowledged_at)" in counts
    assert "WHERE (snoozed_until IS NOT NULL)" in indexes["ix_notifier_platform_alerts_snoozed"]
    serial = ("notifier_admin_users", "nextval('notifier_admin_users_id_seq'::regclass)")
    assert serial in schemas[1]["sequences"]


def _execute(url: str, *statements: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _init_db(tmp_path: Path, url: str) -> None:
    result = _notifier(tmp_path, "init-db", "--database-url", url)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("release", ["0001", UNPREFIXED])
def test_init_db_upgrades_a_release_database_and_keeps_its_rows(
    empty_url: str, tmp_path: Path, release: str
) -> None:
    upgrade(empty_url, release)
    if release == "0001":  # 0.1 kept its revision in alembic_version
        _execute(empty_url, f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version")
    _execute(
        empty_url,
        "INSERT INTO admin_users (email, display_name, password_hash, is_active, created_at)"
        " VALUES ('old@example.com', 'Old', 'x', true, '2024-05-01 12:00:00')",
        "INSERT INTO admin_notifications (type, priority, title, message, is_read,"
        " action_required, notification_metadata, created_at) VALUES ('import_failure',"
        " 'high', 'Kept import', 'bad row', false, false, '{}', '2024-05-01 12:00:00')",
        "INSERT INTO platform_alerts (alert_type, severity, title, affected_stores,"
        " affected_systems, fingerprint, occurrence_count, first_occurred_at,"
        " last_occurred_at, is_resolved, alert_metadata, created_at) VALUES ('database',"
        " 'error', 'Kept alert', '[]', '[]', 'fp-kept', 3, '2024-05-01 12:00:00',"
        " '2024-05-01 12:00:00', false, '{}', '2024-05-01 12:00:00')",
    )

    _init_db(tmp_path, empty_url)

    database = Database(empty_url)
    try:
        kept = Admin(1, "old@example.com", "")
        newcomer = make_admin(database, "new@example.com")  # the id sequence carries on
        app = create_app({"TESTING": True, "SECRET_KEY": "s", "NOTIFIER_DATABASE_URL": empty_url})
        api = app.test_client()
        api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(database, kept)}"
        notifications = api.get(API).json["items"]
        alerts = api.get(f"{API}/alerts").json["items"]
        app.extensions["notifier"].state(app).database.dispose()
    finally:
        database.dispose()
    assert newcomer.id == 2
    assert [n["title"] for n in notifications] == ["Kept import"]
    assert [(a["title"], a["occurrence_count"]) for a in alerts] == [("Kept alert", 3)]
    engine = make_engine(empty_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert not tables & {"admin_users", "admin_notifications", "platform_alerts", "alembic_version"}


def test_a_hosts_own_deliveries_and_admin_users_are_left_alone(
    empty_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    host_rows = [(1, "parcel to Lyon"), (2, "parcel to Oslo")]
    _execute(
        empty_url,
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, address VARCHAR(100))",
        "CREATE INDEX ix_deliveries_due ON deliveries (address)",
        "CREATE TABLE admin_users (id INTEGER PRIMARY KEY, login VARCHAR(100))",
        "INSERT INTO deliveries VALUES (1, 'parcel to Lyon'), (2, 'parcel to Oslo')",
        "INSERT INTO admin_users VALUES (7, 'shop-owner')",
    )

    _init_db(tmp_path, empty_url)
    _init_db(tmp_path, empty_url)
    database = Database(empty_url)
    try:
        with database.session_scope() as db:
            endpoint_service.create(
                db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
            )
        report = FailureReport(
            key="celery:t1:failure",
            task_id="t1",
            job=JobKind.SYNC,
            task_name="shop.sync",
            exception_class="ConnectionError",
            message="timeout",
            fingerprint="shop.sync:ConnectionError",
        )
        with database.session_scope() as db:
            assert record_failures(db, [report], cooldown=timedelta(minutes=15)) == [True]
        sent = dispatch_due(database, DispatchSettings(allow_private=True)).counts
    finally:
        database.dispose()

    assert sent == {"succeeded": 2}  # the notification and the alert reached the webhook
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, address FROM deliveries ORDER BY id")).all() == (
            host_rows
        )
        assert conn.execute(text("SELECT id, login FROM admin_users")).all() == [(7, "shop-owner")]
        delivered = conn.scalar(text("SELECT count(*) FROM notifier_deliveries"))
    columns = {c["name"] for c in inspect(engine).get_columns("deliveries")}
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("deliveries")}
    engine.dispose()
    assert delivered == 2
    assert columns == {"id", "address"} and indexes == {"ix_deliveries_due"}
