"""Apply the Alembic migrations shipped in ``notifier/migrations``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config


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
