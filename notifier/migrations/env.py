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


def _fresh_to_head() -> bool:
    # No notifier revision recorded yet, and the newest one asked for.
    if context.get_context().get_current_heads():
        return False
    target = context.get_revision_argument()
    heads = set(context.script.get_heads())
    if isinstance(target, str):
        return target in ("head", "heads") or {target} == heads
    return set(target or ()) == heads


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
                if _fresh_to_head():
                    # A new database is built from the models, not replayed from 0001:
                    # the early revisions made unprefixed tables (0013 renames them), and a
                    # host may have its own `deliveries` or `admin_users` in this schema.
                    target_metadata.create_all(connection)
                    context.get_context().stamp(context.script, "heads")
                else:
                    context.run_migrations()
            # SQLite (no transactional DDL to Alembic) commits each revision it runs, and
            # nothing when none ran: commit what the branch above did outside a revision.
            if connection.in_transaction():
                connection.commit()
    finally:
        engine.dispose()


run_migrations_online()
