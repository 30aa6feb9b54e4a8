"""Admin login sessions kept on the server, so that ending one takes effect at once.

The browser's cookie carries only a random session id; the table keeps its SHA-256 (as
for API tokens: 256 random bits need no salt), so a database leak yields no usable
cookie. A session ends when its row is deleted: logout, "log out everywhere",
deactivating or deleting the admin, or changing their password. Its lifetime is fixed
at login and never extended by use.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import AdminSession, AdminUser
from ..types import utcnow
from .tokens import hash_token

#: How long a login lasts, counted from the login (not from the last request).
SESSION_LIFETIME = timedelta(hours=12)
# A session id is 43 characters; anything much longer is not one of ours.
_SESSION_ID_MAX = 100


def start_session(db: Session, user: AdminUser, lifetime: timedelta = SESSION_LIFETIME) -> str:
    """Open a session for ``user``; returns the id for the cookie (stored only hashed)."""
    if lifetime <= timedelta(0):
        raise ValueError("a session lifetime must be positive")
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        AdminSession(
            user_id=user.id,
            session_hash=hash_token(session_id),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    db.flush()
    return session_id


def session_admin(db: Session, session_id: str) -> AdminUser | None:
    """The active admin whose unexpired session has this id, or None."""
    if not session_id or len(session_id) > _SESSION_ID_MAX:
        return None
    return db.scalars(
        select(AdminUser)
        .join(AdminSession, AdminSession.user_id == AdminUser.id)
        .where(
            AdminSession.session_hash == hash_token(session_id),
            AdminSession.expires_at > utcnow(),
            AdminUser.is_active.is_(True),
        )
    ).first()


def end_session(db: Session, session_id: str) -> bool:
    """End the session with this id; False when there was none (already ended or unknown)."""
    result = db.execute(
        delete(AdminSession)
        .where(AdminSession.session_hash == hash_token(session_id))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def end_admin_sessions(db: Session, user_id: int) -> int:
    """End every session of one admin (log out everywhere); returns how many ended."""
    result = db.execute(
        delete(AdminSession)
        .where(AdminSession.user_id == user_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune_expired_sessions(db: Session, batch: int = 1000) -> int:
    """Delete up to ``batch`` expired sessions (bounded, so a login never waits on a purge)."""
    expired = (
        select(AdminSession.id)
        .where(AdminSession.expires_at <= utcnow())
        .order_by(AdminSession.expires_at)
        .limit(batch)
    )
    result = db.execute(
        delete(AdminSession)
        .where(AdminSession.id.in_(expired.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "SESSION_LIFETIME",
    "end_admin_sessions",
    "end_session",
    "prune_expired_sessions",
    "session_admin",
    "start_session",
]
