"""API tokens: created with a high-entropy secret shown once, stored as a SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import NotifierError
from ..models import AdminUser, ApiToken
from ..types import utcnow
from ..validation import Checker

#: Every token starts with this, so a leaked one is easy to recognise in logs and scanners.
TOKEN_PREFIX = "ntf_"  # noqa: S105  (a public marker, not a secret)
#: Characters of the token kept in clear (``ntf_`` + 8), to name it in listings and revoke it.
DISPLAY_PREFIX_LENGTH = 12
NAME_MAX = 100
# Writing last_used_at on every request would turn each read into a write; once a minute is
# plenty to tell a live token from a dead one.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNotFoundError(NotifierError):
    """No token matches the id or prefix given (or more than one prefix matches)."""


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 (256 bits of entropy need no salt)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(db: Session, *, user: AdminUser, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the plaintext, which is never stored."""
    check = Checker()
    label = check.text("name", name, max_length=NAME_MAX, required=False) or ""
    check.done()
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=label,
        token_hash=hash_token(plaintext),
        prefix=plaintext[:DISPLAY_PREFIX_LENGTH],
    )
    db.add(token)
    db.flush()
    return token, plaintext


def verify_token(db: Session, plaintext: str) -> tuple[ApiToken, AdminUser] | None:
    """The live token and its active admin for ``plaintext``, or None.

    Unknown, revoked, and tokens of deactivated admins all give None. Sets the time of use
    at most once a minute, as a pending change in ``db`` (``db.dirty`` tells the caller).
    """
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    row = (
        db.execute(
            select(ApiToken, AdminUser)
            .join(AdminUser, AdminUser.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_token(plaintext))
        )
        .tuples()
        .first()
    )
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or not user.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        token.last_used_at = now  # left pending: the caller commits it (or not)
    return token, user


def find_token(db: Session, key: str) -> ApiToken:
    """The token whose id (digits) or displayed prefix (``ntf_...``) is ``key``.

    Raises TokenNotFoundError when none, or more than one, matches.
    """
    key = key.strip()
    if key.isdigit():
        token = db.get(ApiToken, int(key))
        if token is None:
            raise TokenNotFoundError(f"no API token with id {key}")
        return token
    if not key.startswith(TOKEN_PREFIX) or len(key) < DISPLAY_PREFIX_LENGTH:
        raise TokenNotFoundError(
            f"{key!r} is neither a token id nor a token prefix "
            f"(the first {DISPLAY_PREFIX_LENGTH} characters, starting with {TOKEN_PREFIX!r})"
        )
    matches = db.scalars(
        select(ApiToken).where(ApiToken.prefix == key[:DISPLAY_PREFIX_LENGTH]).limit(2)
    ).all()
    if len(matches) != 1:
        raise TokenNotFoundError(
            f"no API token with prefix {key!r}" if not matches else f"prefix {key!r} is ambiguous"
        )
    return matches[0]


def revoke_token(db: Session, token: ApiToken) -> bool:
    """Revoke ``token`` at once; returns False if it was already revoked."""
    result = db.execute(
        update(ApiToken)
        .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.refresh(token)
    return bool(getattr(result, "rowcount", 0))


__all__ = [
    "TokenNotFoundError",
    "create_token",
    "find_token",
    "hash_token",
    "revoke_token",
    "verify_token",
]
