"""Text every store and channel can hold: the one clip, storable values, the text limits.

A failure report, a notification, a chat message and a spooled event all pass their text
through here, so a lone surrogate, a NUL, a hostile ``__str__`` or an over-long message is
handled the same way wherever it enters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from .validation import FINGERPRINT_MAX

#: The text limits of a failure report: its message, the names it carries (store, job,
#: order number) and its traceback, whose end is kept.
MESSAGE_CHARS = 1000
NAME_CHARS = 100
TRACEBACK_CHARS = 6000

#: What stands in for a lone surrogate (a file name from ``os.fsdecode`` holding bytes that
#: are not UTF-8): PostgreSQL, SQLite and UTF-8 itself refuse it, U+FFFD is visible.
PLACEHOLDER = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")
# Beyond this many bits an int becomes text: Python refuses to write one of more than 4,300
# digits as JSON, and no id or count is that long.
_INT_MAX_BITS = 4096


def storable_text(value: Any) -> str:
    r"""``value`` as text PostgreSQL, SQLite and UTF-8 can store; never raises.

    NUL is escaped as ``\x00``, a lone surrogate becomes U+FFFD, and a value whose
    ``__str__`` raises becomes a placeholder naming its type and the error.
    """
    if type(value) is str:
        text = value
    elif value is None:
        return ""
    elif isinstance(value, str):  # a subclass may override __str__: take the characters
        text = str.__str__(value)
    else:
        try:
            text = str(value)
            if type(text) is not str:
                text = str.__str__(text)
        except Exception as exc:  # a hostile or broken __str__ must not lose the failure
            return unprintable(value, "str", exc)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():  # only non-ASCII text can hold a lone surrogate
        text = _SURROGATES.sub(PLACEHOLDER, text)
    return text


def unprintable(value: Any, how: str, error: BaseException) -> str:
    """The placeholder for ``value`` when ``how`` (``str`` or ``repr``) of it raised ``error``."""
    return f"<unprintable {type(value).__name__}: {how}() raised {type(error).__name__}>"


def storable(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` that PostgreSQL and SQLite can both store; never raises."""
    if _depth > 20:
        return "…"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return (
            value if value.bit_length() <= _INT_MAX_BITS else f"<int of {value.bit_length()} bits>"
        )
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    try:
        if isinstance(value, Mapping):
            return {storable_text(k): storable(v, _depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [storable(item, _depth + 1) for item in value]
    except Exception as exc:  # a mapping or sequence that cannot be walked
        return unprintable(value, "iter", exc)
    return storable_text(value)


def clip(value: Any, limit: int, *, keep_end: bool = False) -> str:
    """``value`` as storable text cut to ``limit`` characters, the cut marked with "…".

    The start is kept, or with ``keep_end`` the end (where a traceback names its error).
    """
    text = storable_text(value)
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if keep_end else text[: limit - 1] + "…"


def bounded(value: Any) -> str:
    """``value`` as storable text that fits a key or fingerprint column (255 characters).

    ``value`` as storable text that fits a key or fingerprint column (255 characters):
    itself when it fits, else its head plus a digest of the whole, so distinct long values
    stay distinct.
    """
    text = storable_text(value)
    if len(text) <= FINGERPRINT_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: FINGERPRINT_MAX - 17]}#{digest}"


__all__ = [
    "MESSAGE_CHARS",
    "NAME_CHARS",
    "PLACEHOLDER",
    "TRACEBACK_CHARS",
    "bounded",
    "clip",
    "storable",
    "storable_text",
    "unprintable",
]
