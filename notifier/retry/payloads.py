"""A failed run's original arguments, sealed with Fernet so they rest encrypted.

The key is ``NOTIFIER_RETRY_KEY``: one or more Fernet keys, comma-separated, newest first.
The first key seals; every key opens (``MultiFernet``), so a key is rotated by putting a new
one in front and dropping the old one once nothing sealed with it is kept any more (retention
removes failed runs with their alert). Only the worker needs the key: it seals at failure
time and opens when it sends the retry; the web stores and forwards tokens it cannot read.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import ConfigurationError

#: The environment variable holding the Fernet keys, comma-separated, newest first.
RETRY_KEY_ENV = "NOTIFIER_RETRY_KEY"
#: The largest sealed token kept: a run's arguments travel through the spool and a row.
PAYLOAD_MAX_BYTES = 64 * 1024


def retry_keys() -> str:
    """The keys from the environment ("" when unset)."""
    return os.environ.get(RETRY_KEY_ENV, "").strip()


def generate_key() -> str:
    """A new Fernet key, as ``NOTIFIER_RETRY_KEY`` takes it."""
    return Fernet.generate_key().decode()


@functools.lru_cache(maxsize=4)
def _cipher(keys: str) -> MultiFernet:
    # Keyed by the text itself: a changed environment makes a new cipher, nothing to reset.
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise ConfigurationError(
            f"{RETRY_KEY_ENV} is not set; a task opted in to retries but its arguments cannot "
            f"be kept. Set {RETRY_KEY_ENV} on the worker to a key made by `notifier "
            "retry-key` (or cryptography's Fernet.generate_key())"
        )
    try:
        return MultiFernet([Fernet(part.encode()) for part in parts])
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{RETRY_KEY_ENV} holds a value that is not a Fernet key (32 url-safe base64 bytes): "
            "generate one with Fernet.generate_key()"
        ) from exc


def seal(args: Sequence[Any], kwargs: Mapping[str, Any], keys: str | None = None) -> str:
    """The arguments as one Fernet token; raises ConfigurationError without a usable key.

    Raises ValueError, saying why, when the arguments are not JSON (a pickled task's
    objects) or sealed are over :data:`PAYLOAD_MAX_BYTES`.
    """
    try:
        text = json.dumps({"args": list(args), "kwargs": dict(kwargs)}, ensure_ascii=False)
    except (TypeError, ValueError):
        raise ValueError(
            "its arguments are not JSON (a task sent with the pickle serializer?)"
        ) from None
    token = _cipher(retry_keys() if keys is None else keys).encrypt(text.encode()).decode()
    if len(token) > PAYLOAD_MAX_BYTES:
        raise ValueError(
            f"its arguments are {len(token)} bytes sealed, over the {PAYLOAD_MAX_BYTES} kept"
        )
    return token


def unseal(token: str, keys: str | None = None) -> tuple[list[Any], dict[str, Any]]:
    """The arguments a token holds; ConfigurationError when no key opens it."""
    try:
        data = json.loads(_cipher(retry_keys() if keys is None else keys).decrypt(token.encode()))
    except InvalidToken:
        raise ConfigurationError(
            f"no key in {RETRY_KEY_ENV} opens these arguments: the key that sealed them was "
            "removed; keep old keys after the new one until retention has pruned their runs"
        ) from None
    return list(data["args"]), dict(data["kwargs"])


def rotate(token: str, keys: str | None = None) -> str:
    """The token sealed again with the first key (``MultiFernet.rotate``)."""
    return _cipher(retry_keys() if keys is None else keys).rotate(token.encode()).decode()
