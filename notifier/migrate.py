"""Apply the Alembic migrations shipped in ``notifier/migrations``, beside a host's own.

The notifier keeps its revision in its own table, ``notifier_alembic_version``, so a host
that already uses Alembic (whose pointer lives in ``alembic_version``) can share one
database with it: ``notifier init-db`` never reads or moves the host's pointer. A host
keeps the notifier's tables out of its own autogenerate with :func:`include_name`::

    # the host's migrations/env.py
    from notifier.migrate import include_name

    context.configure(connection=connection, target_metadata=target_metadata,
                      include_name=include_name)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, inspect, select, text
from sqlalchemy.exc import DBAPIError

from .db import make_engine
from .models import Base

#: The notifier's own Alembic version table (Alembic's default is ``alembic_version``).
VERSION_TABLE = "notifier_alembic_version"
#: Every table the notifier owns, its version table included.
NOTIFIER_TABLES = frozenset(Base.metadata.tables) | {VERSION_TABLE}
_LEGACY_VERSION_TABLE = "alembic_version"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for the bundled migrations, pointed at ``database_url``."""
    config = Config()
    config.set_main_option("script_location", "notifier:migrations")
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; running it again changes nothing."""
    command.upgrade(alembic_config(database_url), revision)


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """For a host's Alembic ``env.py``: leave the notifier's tables out of autogenerate.

    Pass it as ``context.configure(..., include_name=include_name)``; the notifier's
    tables (and their indexes, columns and constraints) are then neither dropped nor
    compared. A host that already has an ``include_name`` can call this one from it.
    Only the ``notifier_*`` names count: the unprefixed names of earlier versions (renamed
    by ``notifier init-db``) are left visible, since a host may have a ``deliveries`` of its
    own.
    """
    if type_ == "table":
        return name not in NOTIFIER_TABLES
    table = parent_names.get("table_name")
    return table not in NOTIFIER_TABLES


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """The same filter for Alembic's ``include_object`` hook (for hosts that use that one)."""
    if type_ == "table":
        return name not in NOTIFIER_TABLES
    table = getattr(obj, "table", None)
    return getattr(table, "name", None) not in NOTIFIER_TABLES


def adopt_legacy_version(connection: Connection, revisions: set[str]) -> str | None:
    """Move the notifier's revision from ``alembic_version`` to its own table.

    Versions before 0.2 kept it in ``alembic_version``; it goes into
    ``notifier_alembic_version``. Returns the revision moved, if any.

    Only a database that has the notifier's tables and no notifier version table yet is
    touched, and only a row naming one of the notifier's own revisions is moved; the
    table is dropped when that row was its only one (nobody else used it).
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or _LEGACY_VERSION_TABLE not in tables:
        return None
    if "platform_alerts" not in tables or "admin_notifications" not in tables:
        return None
    legacy = Table(_LEGACY_VERSION_TABLE, MetaData(), autoload_with=connection)
    found = [v for v in connection.execute(select(legacy.c.version_num)).scalars()]
    ours = [v for v in found if v in revisions]
    if len(ours) != 1:
        return None
    revision = str(ours[0])
    connection.execute(legacy.delete().where(legacy.c.version_num == revision))
    if len(found) == 1:
        legacy.drop(connection)
    return revision


def notifier_revisions(config: Config) -> set[str]:
    """Every revision id the notifier ships."""
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def schema_missing(exc: BaseException) -> bool:
    """Whether a database error says a notifier table or column is missing.

    That is: ``notifier init-db`` was never run against this database, or not since an
    upgrade.
    """
    if not isinstance(exc, DBAPIError):
        return False
    # PostgreSQL: undefined_table, undefined_column. SQLite has no codes, only the message.
    if getattr(exc.orig, "sqlstate", None) in ("42P01", "42703"):
        return True
    return str(exc.orig).startswith(("no such table:", "no such column:"))


def schema_problem(database_url: str) -> str | None:
    """None when the schema at ``database_url`` is at the newest revision, else what is wrong.

    Raises the driver's error when the database cannot be reached.
    """
    script = ScriptDirectory.from_config(alembic_config(database_url))
    heads = set(script.get_heads())
    engine = make_engine(database_url)
    try:
        # Read directly, not through a MigrationContext: that logs a line per call, and the
        # worker asks every few seconds while it waits for `notifier init-db`.
        with engine.connect() as connection:
            current: set[str] = set()
            if inspect(connection).has_table(VERSION_TABLE):
                query = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608
                current = set(connection.scalars(query))
    finally:
        engine.dispose()
    if current == heads:
        return None
    if not current:
        return "the notifier schema is missing"
    found, wanted = ", ".join(sorted(current)), ", ".join(sorted(heads))
    return f"the notifier schema is at revision {found}, not {wanted}"
