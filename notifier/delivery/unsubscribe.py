"""One-click unsubscribe (RFC 8058): signed links bound to one admin and one category.

A link's token is signed with a key kept in the database (``notifier_keys``), so the
dispatcher in a worker and the web process that answers the click agree without sharing a
setting, and deleting that row voids every link ever sent. What a token turns off:

- a category (``notification:store_issue``, ``alert:capacity``) on the email channel;
- ``digest``: the admin's digests;
- ``email``: the admin's email switch (summaries that mix categories).

Required events still arrive after any of these: they cannot be turned off.

A link works for :data:`UNSUBSCRIBE_LINK_LIFETIME` after its email was sent (the date is
in the signed token), and only while its admin is active: a link forwarded or found in an
old mailbox does not keep working forever, nor for an account that was taken away.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from ..actions.links import stored_key
from ..enums import DigestFrequency
from ..errors import UnsubscribeLinkError
from ..models import AdminPreferences, AdminUser
from ..preferences.rules import Channel, categories
from ..preferences.store import forget_preferences, turn_off
from ..types import utcnow

__all__ = [
    "DIGEST",
    "EMAIL",
    "UNSUBSCRIBE_LINK_LIFETIME",
    "describe",
    "sign",
    "signing_key",
    "unsubscribe",
    "verify",
]

DIGEST = "digest"
EMAIL = "email"
#: How long a link works after it was sent: about six months, longer than anyone keeps
#: acting on an email, short enough that old mailboxes do not hold live links for good.
UNSUBSCRIBE_LINK_LIFETIME = timedelta(days=183)
_KEY_NAME = "unsubscribe"
_SALT = "notifier.unsubscribe"


def signing_key(db: Session) -> str:
    """The links' key, made on first use (call it in a write transaction on SQLite)."""
    return _key(db)


def _key(db: Session) -> str:
    # A digest run signs a link per admin in one session: read once per session.
    return stored_key(db, _KEY_NAME)


def _known(what: str) -> bool:
    return what in (DIGEST, EMAIL) or what in categories()


def sign(db: Session, user_id: int, what: str, *, now: datetime | None = None) -> str:
    """A URL-safe token that turns ``what`` off for admin ``user_id``, dated ``now``."""
    if not _known(what):
        raise ValueError(f"cannot unsubscribe from {what!r}")
    issued = int((now or utcnow()).timestamp())
    return URLSafeSerializer(_key(db), salt=_SALT).dumps([user_id, what, issued])


def verify(db: Session, token: str, *, now: datetime | None = None) -> tuple[AdminUser, str]:
    """The admin and what the token turns off.

    Raises UnsubscribeLinkError: ``invalid`` (forged, void, or the admin gone), ``expired``
    (older than :data:`UNSUBSCRIBE_LINK_LIFETIME`, or from before links carried a date) or
    ``inactive`` (the admin is deactivated).
    """
    try:
        payload = URLSafeSerializer(_key(db), salt=_SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        payload = None
    if not isinstance(payload, list) or len(payload) not in (2, 3):
        raise UnsubscribeLinkError("invalid", "this unsubscribe link is not valid")
    user_id, what, *issued = payload
    if not isinstance(user_id, int) or not isinstance(what, str) or not _known(what):
        raise UnsubscribeLinkError("invalid", "this unsubscribe link is not valid")
    admin = db.get(AdminUser, user_id)
    if admin is None:
        raise UnsubscribeLinkError("invalid", "this unsubscribe link's account is gone")
    # A link signed before links were dated (two items) cannot tell its age: expired.
    oldest = (now or utcnow()) - UNSUBSCRIBE_LINK_LIFETIME
    if not issued or not isinstance(issued[0], int) or issued[0] < oldest.timestamp():
        raise UnsubscribeLinkError("expired", "this unsubscribe link has expired")
    if not admin.is_active:
        raise UnsubscribeLinkError("inactive", "this unsubscribe link's account is deactivated")
    return admin, what


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
