"""The Alembic migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from notifier.db import make_engine
from notifier.migrate import VERSION_TABLE, upgrade
from notifier.models import Base


# SQLite cannot reflect the lower(email) index; test_users covers it on both databases.
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_models_and_migrations_agree(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        # Our revision lives in our own version table, which autogenerate skips by name.
        opts = {"compare_type": True, "version_table": VERSION_TABLE}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_twice_changes_nothing(database_url: str) -> None:
    upgrade(database_url)  # the fixture already migrated once
    engine = make_engine(database_url)
    inspector = inspect(engine)
    assert {"admin_users", "admin_notifications", "platform_alerts"} <= set(
        inspector.get_table_names()
    )
    indexes = {ix["name"] for ix in inspector.get_indexes("platform_alerts")}
    assert "uq_platform_alerts_open_fingerprint" in indexes
    engine.dispose()


INDEXES = text(
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " AND tablename <> :version ORDER BY indexname"
)


def test_migrations_build_the_models_indexes_exactly_on_postgresql(
    postgres_url: str, empty_postgres_url: str
) -> None:
    # compare_metadata above ignores INCLUDE columns and partial-index conditions; the
    # definitions PostgreSQL keeps do not.
    built = make_engine(empty_postgres_url)
    Base.metadata.create_all(built)
    migrated = make_engine(postgres_url)
    definitions = []
    for engine in (built, migrated):
        with engine.connect() as conn:
            definitions.append(dict(conn.execute(INDEXES, {"version": VERSION_TABLE}).all()))
        engine.dispose()
    assert definitions[0] == definitions[1]
    assert "INCLUDE (snoozed_until, acknowledged_at)" in definitions[1]["ix_platform_alerts_counts"]
    assert "WHERE (snoozed_until IS NOT NULL)" in definitions[1]["ix_platform_alerts_snoozed"]
