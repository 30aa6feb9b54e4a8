"""Shared fixtures: real databases (SQLite and PostgreSQL), each test starting empty.

Services: under CI=true a test whose service is down fails; elsewhere it is skipped with
the reason, so a laptop without PostgreSQL can still run the SQLite half.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from notifier.db import Database
from notifier.migrate import upgrade
from notifier.models import Base

POSTGRES_ADMIN_URL = os.environ.get(
    "NOTIFIER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_URL = os.environ.get("NOTIFIER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def require_service(name: str, url: str) -> None:
    """Skip (or under CI=true, fail) unless the server behind ``url`` accepts TCP connections."""
    parts = urlsplit(url.replace("+psycopg", ""))
    host, port = parts.hostname or "127.0.0.1", parts.port
    assert port is not None, url
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc}); start it (see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_ADMIN_URL)
    name = f"notifier_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema at all), dropped after the test."""
    require_service("PostgreSQL", POSTGRES_ADMIN_URL)
    name = f"notifier_empty_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for this test run."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'notifier.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(request.getfixturevalue("sqlite_url"))


def _empty_tables(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A Database on an empty schema; emptied again afterwards."""
    db = Database(database_url)
    _empty_tables(db)
    yield db
    _empty_tables(db)
    db.dispose()


@pytest.fixture
def db_session(database: Database) -> Iterator[Session]:
    """A session whose uncommitted work is rolled back at the end of the test."""
    with database.sessionmaker() as session:
        yield session
        session.rollback()


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[Database]:
    """An empty PostgreSQL database, for tests that only make sense there."""
    db = Database(postgres_url)
    _empty_tables(db)
    yield db
    _empty_tables(db)
    db.dispose()
