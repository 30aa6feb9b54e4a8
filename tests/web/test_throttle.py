"""Throttles: counts shared through Redis by every process, per process in memory."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from notifier.web import create_app

from notifier.config import Settings
from notifier.db import Database
from notifier.errors import ConfigurationError
from tests.web.conftest import API, make_admin
from tests.web.test_cli import _free_port, notifier_serve


def _apps(config: dict[str, Any], count: int) -> list[Flask]:
    """``count`` apps on the same configuration, as separate server processes would be."""
    return [create_app(config) for _ in range(count)]


def _dispose(apps: list[Flask]) -> None:
    for app in apps:
        app.extensions["notifier"].state(app).database.dispose()


def test_bad_tokens_are_counted_across_processes_through_redis(
    app_config: dict[str, Any], redis_url: str
) -> None:
    config = {
        **app_config,
        "NOTIFIER_AUTH_FAILURES_PER_IP": 4,
        "NOTIFIER_RATELIMIT_STORAGE_URL": redis_url,
    }
    apps = _apps(config, 2)
    bad = {"Authorization": "Bearer ntf_guess"}
    statuses = [
        apps[i % 2].test_client().get(f"{API}/unread-count", headers=bad).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 4 + [429] * 2
    assert redis.Redis.from_url(redis_url).keys("notifier*")  # our keys, our prefix
    _dispose(apps)


def test_in_memory_counts_are_per_process(app_config: dict[str, Any]) -> None:
    apps = _apps({**app_config, "NOTIFIER_AUTH_FAILURES_PER_IP": 2}, 2)
    bad = {"Authorization": "Bearer ntf_guess"}
    statuses = [
        apps[i % 2].test_client().get(f"{API}/unread-count", headers=bad).status_code
        for i in range(4)
    ]
    assert statuses == [401] * 4  # the documented limit of memory://: each process counts alone
    _dispose(apps)


def test_an_unreachable_counter_store_never_locks_admins_out(app_config: dict[str, Any]) -> None:
    # A port nothing listens on: the throttle logs and lets requests through, never a 500.
    app = create_app(
        {
            **app_config,
            "NOTIFIER_AUTH_FAILURES_PER_IP": 1,
            "NOTIFIER_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:9/0",
        }
    )
    bad = {"Authorization": "Bearer ntf_guess"}
    statuses = [app.test_client().get(f"{API}/unread-count", headers=bad).status_code]
    statuses.append(app.test_client().get(f"{API}/unread-count", headers=bad).status_code)
    assert statuses == [401, 401]
    _dispose([app])


def test_storage_defaults_to_a_redis_broker_else_memory() -> None:
    base = {"NOTIFIER_DATABASE_URL": "sqlite:///x.db", "NOTIFIER_SECRET_KEY": "k"}
    redis_broker = {**base, "NOTIFIER_BROKER_URL": "redis://cache:6379/2"}
    assert Settings.from_env(redis_broker).ratelimit_storage_url == "redis://cache:6379/2"
    amqp_broker = {**base, "NOTIFIER_BROKER_URL": "amqp://guest@mq//"}
    assert Settings.from_env(amqp_broker).ratelimit_storage_url == "memory://"
    explicit = {**redis_broker, "NOTIFIER_RATELIMIT_STORAGE_URL": "redis://other:6379/5"}
    assert Settings.from_env(explicit).ratelimit_storage_url == "redis://other:6379/5"
    with pytest.raises(ConfigurationError, match=r"memory:// .* redis://"):
        Settings.from_env(
            {
                **base,
                "NOTIFIER_BROKER_URL": "amqp://x//",
                "NOTIFIER_RATELIMIT_STORAGE_URL": "memcached://m:11211",
            }
        )


# -- a burst of logins against `notifier serve` ------------------------------------------


def _login_burst(base: str, count: int, *, distinct_addresses: bool = False) -> list[int]:
    """``count`` wrong-password logins for one email, sent at once on their own connections.

    With ``distinct_addresses`` each claims its own client address (X-Forwarded-For, the
    server trusting one proxy), so no per-address limit stops them: every one is checked.
    """
    session = requests.Session()
    form = session.get(f"{base}/admin/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, form.text
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    body = {"email": "admin@example.com", "password": "wrong", "csrf_token": csrf.group(1)}
    start = threading.Barrier(count)

    def attempt(number: int) -> int:
        headers = {"Cookie": cookie}
        if distinct_addresses:
            headers["X-Forwarded-For"] = f"10.1.{number // 250}.{number % 250}"
        start.wait()
        response = requests.post(
            f"{base}/admin/login", data=body, headers=headers, timeout=60, allow_redirects=False
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


@contextmanager
def _server(tmp_path: Path, database: Database, redis_url: str, **env: str) -> Iterator[str]:
    """``notifier serve --workers 2`` (default threads) counting failures in Redis."""
    make_admin(database)
    port = str(_free_port())
    environment = {"NOTIFIER_RATELIMIT_STORAGE_URL": redis_url, **env}
    with notifier_serve(
        tmp_path, database.url, "--port", port, "--workers", "2", "--no-access-log", env=environment
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(
    tmp_path: Path, pg_database: Database, redis_url: str
) -> None:
    with _server(tmp_path, pg_database, redis_url) as base:
        statuses = _login_burst(base, 30)
    # Each attempt is counted before its password is checked: 5 are checked, 25 wait.
    assert sorted(statuses) == [401] * 5 + [429] * 25


@pytest.mark.slow
def test_a_burst_of_logins_gets_401_or_429_never_5xx(
    tmp_path: Path, pg_database: Database, redis_url: str
) -> None:
    with _server(tmp_path, pg_database, redis_url) as base:
        statuses = _login_burst(base, 100)
    assert set(statuses) <= {401, 429} and statuses.count(401) == 5, sorted(statuses)


@pytest.mark.slow
def test_logins_checked_at_once_never_run_out_of_database_connections(
    tmp_path: Path, pg_database: Database, redis_url: str
) -> None:
    # 100 clients each under its own limit: 100 password checks at once on 2 processes
    # with more threads than pooled connections; each is answered 401, none 503.
    with _server(tmp_path, pg_database, redis_url, NOTIFIER_TRUSTED_PROXIES="1") as base:
        statuses = _login_burst(base, 100, distinct_addresses=True)
    assert statuses == [401] * 100, sorted(statuses)
