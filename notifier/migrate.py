"""Apply the Alembic migrations shipped in ``notifier/migrations``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from .db import make_engine

#: Where Alembic keeps the schema's revision: env.py configures it, schema_problem reads it.
VERSION_TABLE = "alembic_version"


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
