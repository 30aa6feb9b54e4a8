"""Which spool a worker uses, read from its app's conf (and the environment).

``notifier_spool_url`` (or ``NOTIFIER_SPOOL_URL``) names a Redis server: events go to a
stream there (``notifier_spool_stream``, default ``notifier:spool``), which outlives the
host. Without it, the embedded default: the folder ``notifier_spool_dir``, else
``<instance>/spool``. The worker, its drainer process and ``notifier spool`` all build
their spool here, so they always look at the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from notifier import Settings

from .folder import EventSpool, Spool
from .stream import DEFAULT_CLAIM_IDLE, DEFAULT_STREAM, StreamSpool

_ENV_SPOOL = "NOTIFIER_DRAIN_SPOOL"
_ENV_SPOOL_URL = "NOTIFIER_DRAIN_SPOOL_URL"
_ENV_STREAM = "NOTIFIER_DRAIN_SPOOL_STREAM"
_ENV_CLAIM_IDLE = "NOTIFIER_DRAIN_SPOOL_CLAIM_IDLE"


def configured_spool(
    conf: Mapping[str, Any], settings: Settings | None = None, *, spool_dir: str | None = None
) -> EventSpool[Any]:
    """The spool named by ``conf`` (a Celery app's conf), else by the environment.

    ``spool_dir`` (a command's ``--spool-dir``) names a folder and wins over both.
    """
    url = None if spool_dir else conf.get("notifier_spool_url")
    if not spool_dir and not url:
        settings = settings or Settings.from_env()
        url = settings.spool_url
    if url:
        return StreamSpool(
            str(url),
            stream=str(conf.get("notifier_spool_stream") or DEFAULT_STREAM),
            claim_idle=float(conf.get("notifier_spool_claim_idle") or DEFAULT_CLAIM_IDLE),
        )
    folder = spool_dir or conf.get("notifier_spool_dir")
    if folder:
        return Spool(Path(folder))
    return Spool((settings or Settings.from_env()).instance_path / "spool")


def spool_env(spool: EventSpool[Any]) -> dict[str, str]:
    """Environment that tells a drainer process which spool to drain."""
    if isinstance(spool, StreamSpool):
        return {
            _ENV_SPOOL_URL: spool.url,
            _ENV_STREAM: spool.stream,
            _ENV_CLAIM_IDLE: str(spool.claim_idle),
        }
    assert isinstance(spool, Spool)
    return {_ENV_SPOOL: str(spool.directory)}


def spool_from_env(env: Mapping[str, str]) -> EventSpool[Any]:
    """The spool :func:`spool_env` described."""
    if env.get(_ENV_SPOOL_URL):
        return StreamSpool(
            env[_ENV_SPOOL_URL],
            stream=env.get(_ENV_STREAM) or DEFAULT_STREAM,
            claim_idle=float(env.get(_ENV_CLAIM_IDLE) or DEFAULT_CLAIM_IDLE),
        )
    return Spool(Path(env[_ENV_SPOOL]))
