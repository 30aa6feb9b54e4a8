"""A migrated PostgreSQL database of its own for one benchmark run, dropped afterwards.

The benches import it as ``from scratch import fresh_database`` (they run as scripts from
``bench/``); ``NOTIFIER_BENCH_POSTGRES_URL`` names the server (default: the local ``test``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from notifier.migrate import upgrade

ADMIN_URL = os.environ.get(
    "NOTIFIER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_database(prefix: str = "notifier_bench") -> Iterator[str]:
    """The URL of a new database at the notifier's latest schema, dropped after the block."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
