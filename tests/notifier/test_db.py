"""Engines: a PostgreSQL connection whose peer goes silent fails within a bound, then recovers."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from notifier.db import Database, make_engine
from tests.conftest import proxied

BOUND = 2  # seconds; NETWORK_TIMEOUT (30 s) in production, short here to keep the test fast


@pytest.mark.postgres
def test_a_stranded_connection_fails_within_the_bound_and_the_next_query_succeeds(
    postgres_url: str,
) -> None:
    with proxied(postgres_url) as (proxy, url):
        database = Database(url, network_timeout=BOUND, pool_size=1, max_overflow=0)
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        proxy.strand()  # the pooled connection's packets now vanish, unacknowledged
        started = time.monotonic()
        with pytest.raises(OperationalError), database.engine.connect() as conn:
            conn.execute(text("SELECT 2"))
        elapsed = time.monotonic() - started
        # The pool replaced the dead connection: the next query goes through at once.
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT 3")).scalar() == 3
        database.dispose()
    # Never the kernel's two hours; generous slack so a loaded machine does not fail it.
    assert elapsed < BOUND * 10, elapsed


@pytest.mark.postgres
def test_libpq_parameters_in_the_url_win_over_the_defaults(postgres_url: str) -> None:
    engine = make_engine(postgres_url + "?keepalives_idle=7&tcp_user_timeout=9000")
    with engine.connect() as conn:
        info = conn.connection.dbapi_connection.info  # type: ignore[union-attr]
        params = info.get_parameters()
        assert params["keepalives_idle"] == "7"
        assert params["tcp_user_timeout"] == "9000"
        assert params["keepalives_count"] == "4"
    engine.dispose()
