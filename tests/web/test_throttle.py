"""Throttles: counts shared through Redis by every process, per process in memory."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask import Flask
from notifier.web import create_app

from notifier.config import Settings
from notifier.errors import ConfigurationError
from tests.web.conftest import API


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
