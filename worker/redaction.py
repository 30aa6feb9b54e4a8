"""Make task arguments and tracebacks safe to store: secrets redacted, sizes capped."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from notifier import storable, storable_text, unprintable

REDACTED = "[redacted]"
#: Budget for each piece of metadata; the core refuses metadata over 16 KiB in total.
ARGUMENTS_MAX_BYTES = 4096
_MAX_DEPTH = 8

_SECRET_KEY = re.compile(r"password|passwd|token|secret|api[_-]?key|authorization", re.IGNORECASE)


# "api_key=abc", "token: abc", "Authorization=Bearer abc" inside free text (URLs, messages).
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b((?:[\w-]*)(?:password|passwd|token|secret|api[_-]?key|authorization))"
    r"(\s*[=:]\s*[\"']?)(?:bearer\s+|basic\s+)?([^&\s'\",;)]+)"
)
# "scheme://user:password@host"
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


# What each pattern cannot match without: in ASCII text, checked with plain substring
# tests first (every failure's traceback passes here, and the secret pattern's leading
# ``[\w-]*`` retries at every word of a traceback that names no secret at all).
_SECRET_WORDS = ("password", "passwd", "token", "secret", "api", "authorization")


def redact_text(text: str) -> str:
    """``text`` with secrets that free text tends to carry (URL query, user:pass@) redacted."""
    if text.isascii():  # beyond ASCII, case-insensitive matching is more than lower()
        if "://" in text and "@" in text:
            text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
        lowered = text.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            text = _SECRET_IN_TEXT.sub(rf"\1\2{REDACTED}", text)
        return text
    text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
    return _SECRET_IN_TEXT.sub(rf"\1\2{REDACTED}", text)


def is_secret_name(name: object) -> bool:
    """Whether a mapping key or argument name names a secret (any case, any position)."""
    return isinstance(name, str) and _SECRET_KEY.search(name) is not None


def redact(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` whose secret-named entries, at any depth, are redacted.

    Never raises: text that cannot be stored (a lone surrogate) gets a visible placeholder,
    and so does an object whose ``repr`` raises or a mapping that cannot be walked.
    """
    if _depth > _MAX_DEPTH:
        return "…"
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return storable(value)  # an int too long to write as JSON becomes text
    if isinstance(value, str):
        return storable_text(value)
    try:
        if isinstance(value, Mapping):
            return {
                storable_text(key): REDACTED if is_secret_name(key) else redact(item, _depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [redact(item, _depth + 1) for item in value]
    except Exception as exc:  # walking a hostile container raised
        return unprintable(value, "iter", exc)
    return _repr(value)


def _repr(value: Any) -> str:
    try:
        return storable_text(repr(value))
    except Exception as exc:  # a broken __repr__ (or one that recursed too deep)
        return unprintable(value, "repr", exc)


def capped_json(value: Any, limit: int = ARGUMENTS_MAX_BYTES) -> Any:
    """``value`` itself when its JSON form fits in ``limit`` bytes, else a clipped string of it."""
    text = json.dumps(value, default=_repr, ensure_ascii=False)
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return value
    clipped = encoded[: limit - 40].decode(errors="ignore")
    return f"{clipped}… [truncated, {len(text)} chars]"


def safe_arguments(arguments: Any) -> Any:
    """Task arguments ready for metadata: redacted, then size-capped."""
    return capped_json(redact(arguments))
