"""One-click unsubscribe (RFC 8058): signed links bound to one admin and one category.

A link's token is signed with a key kept in the database (``notifier_keys``), so the
dispatcher in a worker and the web process that answers the click agree without sharing a
setting, and deleting that row voids every link ever sent. What a token turns off:

- a category (``notification:store_issue``, ``alert:capacity``) on the email channel;
- ``digest``: the admin's digests;
- ``email``: the admin's email switch (summaries that mix categories).

Required events still arrive after any of these: they cannot be turned off.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from .models import AdminPreferences, AdminUser, NotifierKey
from .preference_store import forget_preferences, turn_off
from .preferences import Channel, DigestFrequency, categories
from .types import UTCDateTime, utcnow

__all__ = [
    "DIGEST",
    "EMAIL",
    "describe",
    "sign",
    "signing_key",
    "unsubscribe",
    "verify",
]

DIGEST = "digest"
EMAIL = "email"
_KEY_NAME = "unsubscribe"
_CACHED = "notifier_unsubscribe_key"  # the key, read once per session
_SALT = "notifier.unsubscribe"
_INSERT_KEY = text(
    "INSERT INTO notifier_keys (name, value, created_at) VALUES (:n, :v, :at)"
    " ON CONFLICT (name) DO NOTHING"
).bindparams(bindparam("at", type_=UTCDateTime()))


def signing_key(db: Session) -> str:
    """The links' key, made on first use (call it in a write transaction on SQLite)."""
    return _key(db)


def _key(db: Session) -> str:
    cached: str | None = db.info.get(_CACHED)
    if cached is not None:  # a digest run signs a link per admin in one session
        return cached
    key = db.scalar(select(NotifierKey.value).where(NotifierKey.name == _KEY_NAME))
    if key is None:
        # Two processes may make one at once: the first insert wins, both read it back.
        db.execute(_INSERT_KEY, {"n": _KEY_NAME, "v": secrets.token_urlsafe(32), "at": utcnow()})
        key = db.scalar(select(NotifierKey.value).where(NotifierKey.name == _KEY_NAME))
    assert key is not None
    db.info[_CACHED] = key
    return key


def _known(what: str) -> bool:
    return what in (DIGEST, EMAIL) or what in categories()


def sign(db: Session, user_id: int, what: str) -> str:
    """A URL-safe token that turns ``what`` off for admin ``user_id``."""
    if not _known(what):
        raise ValueError(f"cannot unsubscribe from {what!r}")
    return URLSafeSerializer(_key(db), salt=_SALT).dumps([user_id, what])


def verify(db: Session, token: str) -> tuple[AdminUser, str] | None:
    """The admin and what the token turns off, or None (forged, void, or the admin gone)."""
    try:
        user_id, what = URLSafeSerializer(_key(db), salt=_SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    if not isinstance(user_id, int) or not isinstance(what, str) or not _known(what):
        return None
    admin = db.get(AdminUser, user_id)
    return (admin, what) if admin is not None else None


def describe(what: str) -> str:
    """``what`` in words, for the confirmation page."""
    if what == DIGEST:
        return "digest emails"
    if what == EMAIL:
        return "all emails except required ones"
    kind, type_ = what.split(":", 1)
    return f"emails about {type_.replace('_', ' ')} {kind}s"


def unsubscribe(db: Session, user_id: int, what: str) -> bool:
    """Turn ``what`` off for the admin; False when it already was (idempotent)."""
    if what not in (DIGEST, EMAIL):
        return turn_off(db, user_id, Channel.EMAIL, what)
    row = db.get(AdminPreferences, user_id)
    if row is None:
        row = AdminPreferences(user_id=user_id, rules={}, channels={}, quiet_windows=[])
        db.add(row)
    if what == DIGEST:
        if row.digest_frequency is DigestFrequency.OFF:
            return False
        row.digest_frequency = DigestFrequency.OFF
    else:
        if (row.channels or {}).get(EMAIL) is False:
            return False
        row.channels = {**(row.channels or {}), EMAIL: False}
    row.updated_at = utcnow()
    db.flush()
    forget_preferences(db)
    return True
