"""Make task arguments and tracebacks safe to store: secrets redacted, sizes capped."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
#: Budget for each piece of metadata; the core refuses metadata over 16 KiB in total.
ARGUMENTS_MAX_BYTES = 4096
TRACEBACK_MAX_CHARS = 6000
MESSAGE_MAX_CHARS = 1000
_MAX_DEPTH = 8

_SECRET_KEY = re.compile(r"password|passwd|token|secret|api[_-]?key|authorization", re.IGNORECASE)


# "api_key=abc", "token: abc", "Authorization=Bearer abc" inside free text (URLs, messages).
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b((?:[\w-]*)(?:password|passwd|token|secret|api[_-]?key|authorization))"
    r"(\s*[=:]\s*[\"']?)(?:bearer\s+|basic\s+)?([^&\s'\",;)]+)"
)
# "scheme://user:password@host"
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact_text(text: str) -> str:
    """``text`` with secrets that free text tends to carry (URL query, user:pass@) redacted."""
    text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
    return _SECRET_IN_TEXT.sub(rf"\1\2{REDACTED}", text)


def is_secret_name(name: object) -> bool:
    """Whether a mapping key or argument name names a secret (any case, any position)."""
    return isinstance(name, str) and _SECRET_KEY.search(name) is not None


def redact(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` whose secret-named entries, at any depth, are redacted."""
    if _depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if is_secret_name(key) else redact(item, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, _depth + 1) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value
    return repr(value)


def capped_json(value: Any, limit: int = ARGUMENTS_MAX_BYTES) -> Any:
    """``value`` itself when its JSON form fits in ``limit`` bytes, else a clipped string of it."""
    text = json.dumps(value, default=repr, ensure_ascii=False)
    if len(text.encode()) <= limit:
        return value
    clipped = text.encode()[: limit - 40].decode(errors="ignore")
    return f"{clipped}… [truncated, {len(text)} chars]"


def safe_arguments(arguments: Any) -> Any:
    """Task arguments ready for metadata: redacted, then size-capped."""
    return capped_json(redact(arguments))


def clip_text(text: str | None, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping the start."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_traceback(text: str | None, limit: int = TRACEBACK_MAX_CHARS) -> str:
    """A traceback cut to ``limit`` characters, keeping the end, where the error is."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
