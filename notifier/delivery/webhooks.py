"""Standard Webhooks: secrets, signatures and the event envelope a receiver gets.

The spec (standardwebhooks.com): the ``webhook-signature`` header holds ``v1,<base64
HMAC-SHA256>`` over ``"{webhook-id}.{webhook-timestamp}.{body}"``, keyed with the base64
bytes after ``whsec_``; several space-separated signatures let a receiver verify with either
the old or the new secret while a rotation is under way. ``webhook-id`` is the delivery's id,
the same on every retry, so a receiver deduplicates on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..types import utcnow

__all__ = ["SECRET_PREFIX", "envelope", "generate_secret", "sign", "signed_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's prefix, not a secret)
_SECRET_BYTES = 32


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` and 32 random bytes in base64 (shown once)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<signature>`` for ``body`` sent as ``msg_id`` at ``timestamp`` (Unix s)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets_: Iterable[str], msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret given (rotation)."""
    when = int(utcnow().timestamp()) if timestamp is None else timestamp
    signatures = " ".join(sign(secret, msg_id, when, body) for secret in secrets_)
    if not signatures:
        raise ValueError("at least one secret is needed to sign a webhook")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(when),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


def envelope(
    event_id: str, event_type: str, occurred_at: datetime, data: Mapping[str, Any]
) -> bytes:
    """The JSON body: the event's id and type, when it happened, and the object itself."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
            "data": dict(data),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
