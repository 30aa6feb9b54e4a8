"""Alembic environment: online migrations using the notifier's engine settings.

The revision is kept in ``notifier_alembic_version`` so a host's own Alembic history
(``alembic_version``) in the same database is left alone.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from notifier.db import make_engine
from notifier.migrate import (
    NOTIFIER_TABLES,
    VERSION_TABLE,
    adopt_legacy_version,
    notifier_revisions,
)
from notifier.models import Base

config = context.config
target_metadata = Base.metadata


def _only_ours(name: str | None, type_: str, parent_names: Any) -> bool:
    # Autogenerating a notifier revision against a shared database sees only our tables.
    if type_ == "table":
        return name in NOTIFIER_TABLES
    return True


def run_migrations_online() -> None:
    """Run migrations in a transaction on a fresh engine."""
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
                version_table=VERSION_TABLE,
                include_name=_only_ours,
            )
            with context.begin_transaction():
                moved = adopt_legacy_version(connection, notifier_revisions(config))
                if moved is not None:
                    context.get_context().stamp(context.script, moved)
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
