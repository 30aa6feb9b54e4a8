"""The Alembic migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
