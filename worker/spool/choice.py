"""Which spool a worker uses, read from its app's conf (and the environment).

``notifier_spool_url`` (or ``NOTIFIER_SPOOL_URL``) names a Redis server: events go to a
stream there (``notifier_spool_stream``, default ``notifier:spool``), which outlives the
host. Without it, the embedded default: the folder ``notifier_spool_dir``, else
``<instance>/spool``. The worker, its drainer process and ``notifier spool`` all build
their spool here, so they always look at the same one.

A worker's spool is owned by its database (:func:`database_tag`): what it spools is
recorded only by a drainer of the same database, so workers of different databases may
share a folder or a stream.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from notifier import Settings

from .contract import EventSpool
from .folder import Spool
from .stream import DEFAULT_CLAIM_IDLE, DEFAULT_STREAM, StreamSpool

_ENV_SPOOL = "NOTIFIER_DRAIN_SPOOL"
_ENV_SPOOL_URL = "NOTIFIER_DRAIN_SPOOL_URL"
_ENV_STREAM = "NOTIFIER_DRAIN_SPOOL_STREAM"
_ENV_CLAIM_IDLE = "NOTIFIER_DRAIN_SPOOL_CLAIM_IDLE"
_ENV_OWNER = "NOTIFIER_DRAIN_SPOOL_OWNER"


def database_tag(database_url: str) -> str:
    """A short, stable name of the database at ``database_url`` (its password left out).

    A relative SQLite path is made absolute first: two workers started from different
    folders with ``sqlite:///notifier.db`` record to two different files.
    """
    url = make_url(database_url)._replace(password=None)  # set() keeps a None field
    path = url.database or ""
    # A file: URI and an in-memory database name no file to resolve.
    if url.get_backend_name() == "sqlite" and path not in ("", ":memory:") and ":" not in path:
        url = url.set(database=os.path.abspath(path))
    shown = url.render_as_string(hide_password=False)
    return hashlib.sha256(shown.encode()).hexdigest()[:12]


def configured_spool(
    conf: Mapping[str, Any],
    settings: Settings | None = None,
    *,
    spool_dir: str | None = None,
    database_url: str | None = None,
) -> EventSpool[Any]:
    """The spool named by ``conf`` (a Celery app's conf), else by the environment.

    ``spool_dir`` (a command's ``--spool-dir``) names a folder and wins over both. With a
    ``database_url`` (a worker's), the spool is that database's; without one (the
    ``notifier spool`` commands) it shows every database's events.
    """
    owner = database_tag(database_url) if database_url else None
    url = None if spool_dir else conf.get("notifier_spool_url")
    if not spool_dir and not url:
        settings = settings or Settings.from_env()
        url = settings.spool_url
    if url:
        return StreamSpool(
            str(url),
            stream=str(conf.get("notifier_spool_stream") or DEFAULT_STREAM),
            claim_idle=float(conf.get("notifier_spool_claim_idle") or DEFAULT_CLAIM_IDLE),
            owner=owner,
        )
    folder = spool_dir or conf.get("notifier_spool_dir")
    if folder:
        return Spool(Path(folder), owner)
    return Spool((settings or Settings.from_env()).instance_path / "spool", owner)


def spool_env(spool: EventSpool[Any]) -> dict[str, str]:
    """Environment that tells a drainer process which spool to drain."""
    if isinstance(spool, StreamSpool):
        return {
            _ENV_SPOOL_URL: spool.url,
            _ENV_STREAM: spool.stream,
            _ENV_CLAIM_IDLE: str(spool.claim_idle),
            _ENV_OWNER: spool.owner or "",
        }
    assert isinstance(spool, Spool)
    return {_ENV_SPOOL: str(spool.directory), _ENV_OWNER: spool.owner or ""}


def spool_from_env(env: Mapping[str, str]) -> EventSpool[Any]:
    """The spool :func:`spool_env` described."""
    owner = env.get(_ENV_OWNER) or None
    if env.get(_ENV_SPOOL_URL):
        return StreamSpool(
            env[_ENV_SPOOL_URL],
            stream=env.get(_ENV_STREAM) or DEFAULT_STREAM,
            claim_idle=float(env.get(_ENV_CLAIM_IDLE) or DEFAULT_CLAIM_IDLE),
            owner=owner,
        )
    return Spool(Path(env[_ENV_SPOOL]), owner)
