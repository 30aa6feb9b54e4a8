"""Migrations beside a host's own Alembic history, in one PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text

from notifier.migrate import VERSION_TABLE, include_name, include_object, upgrade

_HOST_ENV = """
from alembic import context
from sqlalchemy import create_engine

from host_models import metadata
from notifier.migrate import include_name

engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

_HOST_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table("products", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(100)))
"""

_HOST_MODELS = """
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()
products = Table("products", metadata, Column("id", Integer, primary_key=True),
                 Column("name", String(100)))
"""


def _host_metadata() -> MetaData:
    metadata = MetaData()
    Table(
        "products", metadata, Column("id", Integer, primary_key=True), Column("name", String(100))
    )
    return metadata


@pytest.fixture
def host_alembic(
    tmp_path: Path, empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """A host project with its own Alembic history (revision "0001", like ours), applied."""
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "migrations" / "env.py").write_text(_HOST_ENV)
    (tmp_path / "migrations" / "script.py.mako").write_text("")
    (tmp_path / "migrations" / "versions" / "0001_products.py").write_text(_HOST_REVISION)
    (tmp_path / "host_models.py").write_text(_HOST_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = Config()
    config.set_main_option("script_location", str(tmp_path / "migrations"))
    config.set_main_option("sqlalchemy.url", empty_postgres_url)
    command.upgrade(config, "head")
    return config


def _versions(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text(f"SELECT version_num FROM {table}")  # noqa: S608 - our own names
            return list(conn.execute(query).scalars())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_init_db_leaves_the_hosts_alembic_history_alone(
    host_alembic: Config, empty_postgres_url: str
) -> None:
    upgrade(empty_postgres_url)
    upgrade(empty_postgres_url)  # and again: nothing changes
    assert _versions(empty_postgres_url, "alembic_version") == ["0001"]
    assert _versions(empty_postgres_url, VERSION_TABLE) != []
    # The host's next migration still runs from its own pointer.
    command.upgrade(host_alembic, "head")
    command.check(host_alembic)  # its autogenerate finds nothing to do, notifier tables present


@pytest.mark.postgres
def test_hosts_autogenerate_ignores_the_notifier_tables(
    host_alembic: Config, empty_postgres_url: str
) -> None:
    upgrade(empty_postgres_url)
    engine = create_engine(empty_postgres_url)
    try:
        with engine.connect() as conn:
            unfiltered = compare_metadata(MigrationContext.configure(conn), _host_metadata())
            by_name = compare_metadata(
                MigrationContext.configure(conn, opts={"include_name": include_name}),
                _host_metadata(),
            )
            by_object = compare_metadata(
                MigrationContext.configure(conn, opts={"include_object": include_object}),
                _host_metadata(),
            )
    finally:
        engine.dispose()
    dropped = {diff[1].name for diff in unfiltered if diff[0] == "remove_table"}
    assert {"notifier_admin_notifications", "notifier_platform_alerts", VERSION_TABLE} <= dropped
    assert by_name == []
    assert by_object == []


@pytest.mark.postgres
def test_a_database_from_the_previous_version_is_adopted(empty_postgres_url: str) -> None:
    upgrade(empty_postgres_url, "0001")
    engine = create_engine(empty_postgres_url)
    try:
        with engine.begin() as conn:  # how 0.1 left it: our revision in alembic_version
            conn.execute(text(f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version"))
            conn.execute(
                text(
                    "INSERT INTO admin_users (email, display_name, password_hash,"
                    " is_active, created_at) VALUES ('a@x.io', 'A', 'h', true, now())"
                )
            )
    finally:
        engine.dispose()
    upgrade(empty_postgres_url)
    engine = create_engine(empty_postgres_url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT email FROM notifier_admin_users")).scalars().all()
    finally:
        engine.dispose()
    assert "alembic_version" not in tables  # it held only our row
    assert "notifier_api_tokens" in tables  # 0002 on ran from where 0.1 stopped
    assert kept == ["a@x.io"]


@pytest.mark.postgres
def test_adoption_moves_only_our_row(empty_postgres_url: str) -> None:
    upgrade(empty_postgres_url, "0001")
    engine = create_engine(empty_postgres_url)
    try:
        with engine.begin() as conn:  # a host whose own pointer shared the table (branches)
            conn.execute(text(f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version"))
            conn.execute(
                text(f"ALTER TABLE alembic_version DROP CONSTRAINT IF EXISTS {VERSION_TABLE}_pkc")
            )
            conn.execute(text("INSERT INTO alembic_version VALUES ('host_abc123')"))
    finally:
        engine.dispose()
    upgrade(empty_postgres_url)
    assert _versions(empty_postgres_url, "alembic_version") == ["host_abc123"]
    assert len(_versions(empty_postgres_url, VERSION_TABLE)) == 1


def test_sqlite_init_db_keeps_its_own_version_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert VERSION_TABLE in tables and "alembic_version" not in tables
