"""Field checks shared by the services: each collects every problem before anything is written."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ValidationError

TITLE_MAX = 200
MESSAGE_MAX = 10_000
ACTION_URL_MAX = 500
FINGERPRINT_MAX = 255
METADATA_MAX_BYTES = 16 * 1024
LIST_MAX_ITEMS = 1000
SYSTEM_NAME_MAX = 100
#: The largest id an integer column (store_id) holds on PostgreSQL.
INTEGER_MAX = 2**31 - 1

E = TypeVar("E", bound=StrEnum)


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
        """A string of at most ``max_length`` characters; blank counts as missing."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(field, "is required and must not be blank")
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        if len(value) > max_length:
            self.fail(field, f"must be at most {max_length} characters (got {len(value)})")
        return value

    def optional_int(self, field: str, value: Any) -> int | None:
        """An integer or None (booleans are not integers here)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "must be an integer or null")
            return None
        return value

    def metadata(self, field: str, value: Any) -> dict[str, Any]:
        """A JSON object of at most 16 KiB, returned exactly as it will be stored."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(field, f"must be a JSON object (a dict), not {type(value).__name__}")
            return {}
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            self.fail(field, f"must be JSON-serializable: {exc}")
            return {}
        # Measured as the UTF-8 JSON that is stored, so "é" counts 2 bytes, not 6 (\u00e9).
        if len(json.dumps(value, ensure_ascii=False).encode()) > METADATA_MAX_BYTES:
            self.fail(field, f"must be at most {METADATA_MAX_BYTES} bytes as JSON")
            return {}
        result: dict[str, Any] = json.loads(encoded)
        return result

    def action_url(self, field: str, value: Any) -> str | None:
        """A path inside the app (``/admin/...``) or an absolute http(s) URL."""
        url = self.text(field, value, max_length=ACTION_URL_MAX, required=False)
        if url is None:
            return None
        if not is_safe_url(url):
            self.fail(
                field,
                "must be a relative path starting with '/' or an http(s) URL "
                "(no javascript:, data:, protocol-relative '//' or control characters)",
            )
        return url

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
        """A list of short non-empty names (system names)."""
        if value is None:
            return []
        if not isinstance(value, list | tuple) or len(value) > LIST_MAX_ITEMS:
            self.fail(field, f"must be a list of at most {LIST_MAX_ITEMS} strings")
            return []
        if any(
            not isinstance(item, str) or not item.strip() or len(item) > SYSTEM_NAME_MAX
            for item in value
        ):
            self.fail(field, f"must contain only non-blank strings of at most {SYSTEM_NAME_MAX}")
            return []
        return sorted(set(value))


def is_safe_url(url: str) -> bool:
    """Whether ``url`` is an app-relative path or an absolute http(s) URL with a host."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch in " \\" for ch in url):
        return False
    if url.startswith("/"):
        return not url.startswith("//")
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
