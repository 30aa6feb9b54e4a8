"""One configuration object, read from ``NOTIFIER_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigurationError, ValidationError

#: ``parse_age``'s units and syntax: "90d", "12h", "2w".
_UNITS = {"d": 86_400, "h": 3_600, "w": 7 * 86_400}
_AGE = re.compile(r"^\s*(\d{1,6})\s*([dhw])\s*$")


@dataclass(frozen=True)
class Settings:
    """Everything the notifier reads from the environment.

    | variable                 | default                                           |
    |--------------------------|---------------------------------------------------|
    | NOTIFIER_DATABASE_URL    | sqlite:///<instance>/notifier.db                   |
    | NOTIFIER_BROKER_URL      | sqla+sqlite:///<instance>/broker.db (kombu)        |
    | NOTIFIER_SECRET_KEY      | None: the web app keeps a random one in <instance>  |
    | NOTIFIER_TIMEZONE        | UTC                                               |
    | NOTIFIER_INSTANCE_PATH   | ./instance                                        |
    | NOTIFIER_COOKIE_SECURE   | false (true: session cookie only sent over HTTPS)  |
    | NOTIFIER_TRUSTED_PROXIES | 0 (reverse proxies whose X-Forwarded-For to trust) |
    | NOTIFIER_RATELIMIT_STORAGE_URL | the broker if it is Redis, else memory://     |
    | NOTIFIER_LIVE_REDIS_URL  | None: live push fans out without Redis             |
    | NOTIFIER_SPOOL_URL       | None: the worker spools to a local folder          |
    | NOTIFIER_ALERT_REPEAT_INTERVAL | 4h (reminders of unacknowledged critical alerts) |
    """

    database_url: str
    broker_url: str
    secret_key: str | None  # None: unset; the web app then makes one (reading writes nothing)
    timezone: str
    instance_path: Path
    cookie_secure: bool = False
    trusted_proxies: int = 0
    ratelimit_storage_url: str = "memory://"
    live_redis_url: str | None = None
    spool_url: str | None = None  # a Redis stream that outlives the host, for the worker
    alert_repeat_interval: timedelta = timedelta(hours=4)

    @property
    def tz(self) -> ZoneInfo:
        """The zone in which "today" is counted."""
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``), validating each one."""
        env = os.environ if environ is None else environ
        instance = Path(env.get("NOTIFIER_INSTANCE_PATH") or "instance").resolve()

        database_url = env.get("NOTIFIER_DATABASE_URL") or ""
        if not database_url:
            ensure_instance(instance, "NOTIFIER_DATABASE_URL")
            database_url = f"sqlite:///{instance / 'notifier.db'}"
        validate_database_url(database_url)

        broker_url = env.get("NOTIFIER_BROKER_URL") or ""
        if not broker_url:
            ensure_instance(instance, "NOTIFIER_BROKER_URL")
            broker_url = f"sqla+sqlite:///{instance / 'broker.db'}"

        timezone = str(configured_timezone(env))

        secret_key = env.get("NOTIFIER_SECRET_KEY") or None
        cookie_secure = flag(env, "NOTIFIER_COOKIE_SECURE")
        proxies = (env.get("NOTIFIER_TRUSTED_PROXIES") or "0").strip()
        if not proxies.isdigit():
            raise ConfigurationError(
                f"NOTIFIER_TRUSTED_PROXIES={proxies!r} is not a whole number; set it to how "
                "many reverse proxies stand in front of the app (0 when none)"
            )
        # Throttle counts must be shared by every server process to mean anything; a Redis
        # broker is a Redis everyone already reaches.
        ratelimit_storage_url = env.get("NOTIFIER_RATELIMIT_STORAGE_URL") or (
            broker_url if broker_url.startswith(("redis://", "rediss://")) else "memory://"
        )
        scheme = ratelimit_storage_url.partition("://")[0]
        if scheme not in ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster"):
            raise ConfigurationError(
                f"NOTIFIER_RATELIMIT_STORAGE_URL={ratelimit_storage_url!r} is not a storage "
                "the login and token throttles can use; set memory:// (one process) or a "
                "redis://host:6379/0 URL (shared by every server process)"
            )
        spool_url = env.get("NOTIFIER_SPOOL_URL") or None
        if spool_url is not None:
            validate_spool_url(spool_url, "NOTIFIER_SPOOL_URL")
        return cls(
            database_url,
            broker_url,
            secret_key,
            timezone,
            instance,
            cookie_secure,
            int(proxies),
            ratelimit_storage_url,
            live_redis_url_from_env(env),
            spool_url,
            _repeat_interval(env.get("NOTIFIER_ALERT_REPEAT_INTERVAL") or "4h"),
        )


def live_redis_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``NOTIFIER_LIVE_REDIS_URL``: the Redis that carries live-push change notices, or None.

    Every process that writes notifications (web, worker, CLI) must have the same value:
    on SQLite a change only reaches the streams of other processes through it.
    """
    env = os.environ if environ is None else environ
    url = (env.get("NOTIFIER_LIVE_REDIS_URL") or "").strip()
    if not url:
        return None
    validate_live_redis_url(url)
    return url


def _require_redis_url(url: str, name: str, advice: str) -> None:
    """Raise ConfigurationError (``name`` is not a Redis URL; ``advice``) unless it is one."""
    if url.partition("://")[0] not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"{name}={url!r} is not a Redis URL; {advice}")


def validate_live_redis_url(url: str) -> None:
    """Raise ConfigurationError unless ``url`` names a Redis server."""
    _require_redis_url(
        url,
        "NOTIFIER_LIVE_REDIS_URL",
        "set it to e.g. redis://127.0.0.1:6379/0 (the same in every web, worker and CLI "
        "process), or leave it empty",
    )


def parse_age(text: str) -> timedelta:
    """``"90d"``, ``"12h"`` or ``"2w"`` as a timedelta; ValidationError otherwise."""
    match = _AGE.match(text or "")
    if match is None or int(match.group(1)) == 0:
        raise ValidationError(
            {"older_than": "give a positive age in days, hours or weeks, e.g. 90d, 36h or 2w"}
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _repeat_interval(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValidationError:
        raise ConfigurationError(
            f"NOTIFIER_ALERT_REPEAT_INTERVAL={text!r} is not an interval; give hours, days "
            "or weeks, e.g. 4h, 1d or 1w"
        ) from None


def flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (empty or unset is false)."""
    value = (env.get(name) or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name}={value!r} is not a boolean; use true or false")


def validate_spool_url(url: str, name: str) -> None:
    """Raise ConfigurationError unless ``url`` names a Redis server the worker can spool to."""
    _require_redis_url(
        url,
        name,
        "set it to redis://host:6379/0 (a Redis stream every worker reaches) or leave it "
        "unset for the local spool folder",
    )


def validate_database_url(url: str) -> None:
    """Raise ConfigurationError unless ``url`` is a SQLAlchemy URL for SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"NOTIFIER_DATABASE_URL={url!r} is not a SQLAlchemy URL; "
            "use e.g. 'sqlite:///instance/notifier.db' or "
            "'postgresql+psycopg://user@host:5432/dbname'"
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"NOTIFIER_DATABASE_URL uses {parsed.get_backend_name()!r}; "
            "notifier supports 'sqlite' and 'postgresql' (postgresql+psycopg://...)"
        )


def ensure_instance(instance: Path, variable: str) -> None:
    """Create the instance folder ``instance`` (named by ``variable``), or say how to fix it."""
    try:
        instance.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"{variable} is not set and {instance} is not writable; "
            f"set {variable} or NOTIFIER_INSTANCE_PATH"
        ) from exc
    if not os.access(instance, os.W_OK):
        raise ConfigurationError(
            f"{variable} is not set and {instance} is not writable; "
            f"set {variable} or NOTIFIER_INSTANCE_PATH"
        )


def configured_timezone(environ: Mapping[str, str] | None = None) -> ZoneInfo:
    """The zone named by ``NOTIFIER_TIMEZONE`` (default UTC), without touching the disk."""
    env = os.environ if environ is None else environ
    name = env.get("NOTIFIER_TIMEZONE") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"NOTIFIER_TIMEZONE={name!r} is not a known time zone; "
            "use an IANA name such as 'UTC' or 'Europe/Luxembourg'"
        ) from exc
