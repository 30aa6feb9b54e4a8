"""Every input rule of the notifier, written once: the limits, text, URLs and metadata.

The services call these through ``Checker`` (which collects every problem before anything is
written); the web API's schemas call the same ``*_problem`` functions and publish the same
patterns in the OpenAPI document, and the login's ``next`` check is ``is_app_path``. A rule
changes here and nowhere else.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from .errors import ValidationError

# -- the limits ------------------------------------------------------------------------

TITLE_MAX = 200
MESSAGE_MAX = 10_000
ACTION_URL_MAX = 500
FINGERPRINT_MAX = 255
METADATA_MAX_BYTES = 16 * 1024
#: Nesting of metadata (an object holding an object is 2 deep); far below what parsers allow.
METADATA_MAX_DEPTH = 32
LIST_MAX_ITEMS = 1000
SYSTEM_NAME_MAX = 100
#: Largest value an INTEGER column holds on PostgreSQL; ids and store ids stay within it.
INT32_MAX = 2**31 - 1
#: Most items one page of a list holds.
PAGE_MAX = 200
#: Deepest offset a list may be read from; beyond it a reader should narrow its filters.
SKIP_MAX = 10_000_000
#: Longest IANA time zone name stored (the longest today is 32 characters).
TIME_ZONE_MAX = 64
#: An owner's name (a team, a person): ``owner=`` on the decorators, ``notifier_owners``.
OWNER_MAX = 100
#: Most quiet-hour windows one admin may keep.
QUIET_WINDOWS_MAX = 14

E = TypeVar("E", bound=StrEnum)

# -- text ------------------------------------------------------------------------------


# Every code point that draws nothing, as a regex character-class body: controls (Cc),
# format characters (Cf: zero-width space, BOM, bidi controls, soft hyphen, ...) and
# separators/whitespace, in the Basic Multilingual Plane (so the OpenAPI document's patterns
# stay valid ECMAScript regexes). Written out rather than computed (150 ms at import);
# tests/notifier/test_validation.py recomputes it from unicodedata.
_INVISIBLE = (
    "\\x00-\\x20\\x7f-\\xa0\\xad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891"
    "\\u08e2\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064\\u2066-\\u206f"
    "\\u3000\\ufeff\\ufff9-\\ufffb"
)
_VISIBLE = re.compile(f"[^{_INVISIBLE}]")
#: Text with at least one visible character and no NUL (PostgreSQL text cannot hold NUL).
TEXT_PATTERN = f"^[^\\x00]*[^{_INVISIBLE}][^\\x00]*$"
#: Text without NUL, possibly empty.
NO_NUL_PATTERN = "^[^\\x00]*$"

# Embedding, override and isolate controls reorder the text around them on a page (a title
# "invoice\u202egnp.exe" shows as "invoiceexe.png"); plain right-to-left text never needs
# them, so they are removed from stored text. The marks (LRM, RLM, ALM) stay: they reorder
# nothing beyond their neighbours.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def is_blank(value: str) -> bool:
    """Whether ``value`` draws nothing: empty, spaces, or only invisible characters."""
    return _VISIBLE.search(value) is None


def neutralise(value: str) -> str:
    """``value`` without bidirectional embedding/override/isolate controls."""
    return _BIDI_CONTROLS.sub("", value)


def text_problem(value: str, *, max_length: int, required: bool = True) -> str | None:
    """Why ``value`` is not acceptable text of at most ``max_length`` characters, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if required and is_blank(neutralise(value)):
        return "is required and must not be blank (invisible characters do not count)"
    if len(value) > max_length:
        return f"must be at most {max_length} characters (got {len(value)})"
    return None


# -- URLs ------------------------------------------------------------------------------

_URL_CHAR = f"[^{_INVISIBLE}\\\\]"  # nothing invisible (C0, C1, spaces, bidi), no backslash
_PORT = "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_SCHEME = "[Hh][Tt][Tt][Pp][Ss]?"  # written out: JSON Schema patterns have no inline flags
_HOST = r"(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])"
#: A path inside this app: "/", or "/x..." (never "//host" nor "/\\host", which leave it).
APP_PATH_PATTERN = f"^/(?:[^/{_INVISIBLE}\\\\]{_URL_CHAR}*)?$"
#: What a link may be: an app path or an http(s) URL with a host and a valid port.
SAFE_URL_PATTERN = (
    f"^(?:/|/[^/{_INVISIBLE}\\\\]{_URL_CHAR}*"
    f"|{_SCHEME}://{_HOST}(?::{_PORT})?(?:[/?#]{_URL_CHAR}*)?)$"
)
_APP_PATH = re.compile(APP_PATH_PATTERN)
_SAFE_URL = re.compile(SAFE_URL_PATTERN)
URL_RULE = (
    "must be a relative path starting with '/' or an http(s) URL with a host and a valid "
    "port (no javascript:, data:, protocol-relative '//', spaces or control characters)"
)


#: Where a delivery endpoint may point: an absolute http(s) URL with a host name, an IPv4
#: address or a bracketed IPv6 address, and a valid port (whether plain http and private
#: addresses are allowed is the engine's rule, ``egress``). IPv6 is written in hex only (the
#: RFC 4291 forms, "::" compression included): so every string the pattern admits is an
#: address, for the schema fuzzer as for us. No dotted IPv4 tail ("::ffff:1.2.3.4", an
#: IPv4-mapped address, refused by the engine anyway) and no zone id ("%25eth0", a local
#: interface).
_HEX = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        f"(?:{_HEX}:){{7}}{_HEX}",
        f"(?:{_HEX}:){{1,7}}:",
        f"(?:{_HEX}:){{1,6}}:{_HEX}",
        f"(?:{_HEX}:){{1,5}}(?::{_HEX}){{1,2}}",
        f"(?:{_HEX}:){{1,4}}(?::{_HEX}){{1,3}}",
        f"(?:{_HEX}:){{1,3}}(?::{_HEX}){{1,4}}",
        f"(?:{_HEX}:){{1,2}}(?::{_HEX}){{1,5}}",
        f"{_HEX}:(?::{_HEX}){{1,6}}",
        f":(?:(?::{_HEX}){{1,7}}|:)",
    ]
)
ENDPOINT_URL_PATTERN = (
    f"^{_SCHEME}://(?:[A-Za-z0-9][A-Za-z0-9.-]*|\\[(?:{_IPV6})\\])"
    f"(?::{_PORT})?(?:[/?#]{_URL_CHAR}*)?$"
)
_ENDPOINT_URL = re.compile(ENDPOINT_URL_PATTERN)
ENDPOINT_URL_RULE = (
    "must be an absolute http(s) URL with a host name, an IPv4 address or a bracketed IPv6 "
    "address, and a valid port, without credentials, spaces or control characters"
)


def runbook_problem(url: str) -> str | None:
    """Why ``url`` cannot be an alert's runbook link, or None: an absolute http(s) URL."""
    problem = endpoint_url_problem(url)
    return None if problem is None else problem.replace("must be", "a runbook must be", 1)


def is_app_path(url: str) -> bool:
    """Whether ``url`` is a path inside this app (where a login may send the browser back)."""
    return _APP_PATH.fullmatch(url) is not None


def is_safe_url(url: str) -> bool:
    """Whether ``url`` is an app path or an absolute http(s) URL with a host."""
    return _SAFE_URL.fullmatch(url) is not None


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a notification's link, or None."""
    if len(url) > ACTION_URL_MAX:
        return f"must be at most {ACTION_URL_MAX} characters (got {len(url)})"
    return None if is_safe_url(url) else URL_RULE


def endpoint_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a delivery endpoint's URL, or None (the engine then checks more)."""
    if len(url) > ACTION_URL_MAX:
        return f"must be at most {ACTION_URL_MAX} characters (got {len(url)})"
    return ENDPOINT_URL_RULE if _ENDPOINT_URL.fullmatch(url) is None else None


# -- time zones and clock times ---------------------------------------------------------

#: A time of day on a 24-hour clock, "HH:MM".
CLOCK_PATTERN = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
_CLOCK = re.compile(CLOCK_PATTERN)


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every IANA time zone name this system knows."""
    return frozenset(zoneinfo.available_timezones())


def time_zone_problem(value: str) -> str | None:
    """Why ``value`` is not an IANA time zone name, or None."""
    if len(value) > TIME_ZONE_MAX or value not in time_zones():
        return "must be an IANA time zone name such as Europe/Berlin or UTC"
    return None


def clock_problem(value: str) -> str | None:
    """Why ``value`` is not a time of day written HH:MM (24-hour clock), or None."""
    return None if _CLOCK.fullmatch(value) else "must be a time of day written HH:MM, e.g. 22:00"


# -- metadata --------------------------------------------------------------------------

TOO_DEEP = f"must be nested at most {METADATA_MAX_DEPTH} levels deep"


def _structure_problem(value: dict[str, Any]) -> str | None:
    """NUL in a string or key, or nesting deeper than the limit (other keys JSON makes text)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: a hostile depth cannot exhaust the interpreter's stack
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple) and depth > METADATA_MAX_DEPTH:
            return TOO_DEEP
        if isinstance(item, str):
            if "\x00" in item:
                return "must not contain NUL characters"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return "must not contain NUL characters"
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return None


def metadata_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as metadata, or None.

    An object, nested at most ``METADATA_MAX_DEPTH`` deep, of JSON values without NUL, at
    most ``METADATA_MAX_BYTES`` as the UTF-8 JSON that is stored ("é" counts 2 bytes).
    """
    if not isinstance(value, dict):
        return f"must be a JSON object (a dict), not {type(value).__name__}"
    problem = _structure_problem(value)
    if problem:
        return problem
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return "must hold only finite numbers"
    except TypeError as exc:
        return f"must be JSON-serializable: {exc}"
    if len(encoded.encode()) > METADATA_MAX_BYTES:
        return f"must be at most {METADATA_MAX_BYTES} bytes as JSON"
    return None


# -- the collector the services use ----------------------------------------------------


class Checker:
    """Collects field errors; ``done()`` raises them all at once as a ValidationError."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, field: str, why: str) -> None:
        """Record that ``field`` is invalid, keeping the first reason given."""
        self.errors.setdefault(field, why)

    def done(self) -> None:
        """Raise the collected errors, if any."""
        if self.errors:
            raise ValidationError(self.errors)

    def enum(self, field: str, value: Any, enum_cls: type[E]) -> E:
        """``value`` as a member of ``enum_cls``."""
        try:
            return enum_cls(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum_cls)
            self.fail(field, f"must be one of: {allowed}")
            return next(iter(enum_cls))

    def text(self, field: str, value: Any, *, max_length: int, required: bool = True) -> str | None:
        """Text of at most ``max_length`` characters, without bidi controls; blank is missing."""
        if value is None or (isinstance(value, str) and not required and is_blank(value)):
            if required:
                self.fail(field, "is required and must not be blank")
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        problem = text_problem(value, max_length=max_length, required=required)
        if problem:
            self.fail(field, problem)
        return neutralise(value)

    def optional_int(self, field: str, value: Any) -> int | None:
        """An integer or None (booleans are not integers here)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "must be an integer or null")
            return None
        return value

    def metadata(self, field: str, value: Any) -> dict[str, Any]:
        """A JSON object (see ``metadata_problem``), returned exactly as it will be stored."""
        if value is None:
            return {}
        problem = metadata_problem(value)
        if problem:
            self.fail(field, problem)
            return {}
        result: dict[str, Any] = json.loads(json.dumps(value))
        return result

    def action_url(self, field: str, value: Any) -> str | None:
        """A path inside the app (``/admin/...``) or an absolute http(s) URL."""
        if value is None or (isinstance(value, str) and is_blank(value)):
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        problem = url_problem(value)
        if problem:
            self.fail(field, problem)
        return value

    def runbook(self, field: str, value: Any) -> str | None:
        """An absolute http(s) URL (a runbook link), or None when blank."""
        if value is None or (isinstance(value, str) and is_blank(value)):
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        problem = runbook_problem(value)
        if problem:
            self.fail(field, problem)
        return value

    def int_list(self, field: str, value: Any) -> list[int]:
        """A list of integer ids (store ids)."""
        if value is None:
            return []
        if not isinstance(value, list | tuple) or len(value) > LIST_MAX_ITEMS:
            self.fail(field, f"must be a list of at most {LIST_MAX_ITEMS} integers")
            return []
        if any(isinstance(item, bool) or not isinstance(item, int) for item in value):
            self.fail(field, "must contain only integers (store ids)")
            return []
        return sorted(set(value))

    def name_list(self, field: str, value: Any) -> list[str]:
        """A list of short non-blank names (system names)."""
        if value is None:
            return []
        if not isinstance(value, list | tuple) or len(value) > LIST_MAX_ITEMS:
            self.fail(field, f"must be a list of at most {LIST_MAX_ITEMS} strings")
            return []
        if any(
            not isinstance(item, str) or text_problem(item, max_length=SYSTEM_NAME_MAX)
            for item in value
        ):
            self.fail(field, f"must contain only non-blank strings of at most {SYSTEM_NAME_MAX}")
            return []
        return sorted({neutralise(item) for item in value})
