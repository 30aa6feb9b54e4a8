"""Admin accounts: creation, password changes, deactivation and deletion, credential checks.

Every change that takes access away (deactivation, deletion, a new password) ends the
admin's sessions in the same transaction, so no browser stays logged in after it.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import DuplicateAdminError
from ..models import AdminUser, ApiToken
from ..validation import Checker
from .sessions import end_admin_sessions

PASSWORD_MIN = 8
# A valid hash of a random password, checked against when the email is unknown, so a login
# for a missing account costs as much time as one for a real account.
_DUMMY_HASH = generate_password_hash("not-a-real-password-" + "x" * 16)


def find_admin(db: Session, email: str) -> AdminUser | None:
    """The admin with this email, compared case-insensitively."""
    return db.scalars(
        select(AdminUser).where(func.lower(AdminUser.email) == email.strip().lower())
    ).first()


def create_admin(
    db: Session, *, email: str, password: str, display_name: str | None = None
) -> AdminUser:
    """Create an active admin; the password is stored as a scrypt hash, never in clear."""
    check = Checker()
    address = check.text("email", email, max_length=320) or ""
    if address and ("@" not in address or address.strip() != address):
        check.fail("email", "must be an email address such as admin@example.com")
    _check_password(check, password)
    check.done()
    if find_admin(db, address) is not None:
        raise DuplicateAdminError(f"an admin with email {address!r} already exists")
    user = AdminUser(
        email=address,
        display_name=display_name or address.split("@", 1)[0],
        password_hash=generate_password_hash(password),
        is_active=True,
    )
    db.add(user)
    db.flush()
    return user


def _check_password(check: Checker, password: str) -> None:
    if not isinstance(password, str) or not password.strip():
        check.fail("password", "must not be empty")
    elif len(password) < PASSWORD_MIN:
        check.fail("password", f"must be at least {PASSWORD_MIN} characters")


def set_password(db: Session, user: AdminUser, password: str) -> int:
    """Give ``user`` a new password and end all their sessions; returns how many ended."""
    check = Checker()
    _check_password(check, password)
    check.done()
    user.password_hash = generate_password_hash(password)
    db.flush()
    return end_admin_sessions(db, user.id)


def deactivate_admin(db: Session, user: AdminUser) -> int:
    """Stop ``user`` from logging in or using tokens; ends their sessions (how many returned)."""
    user.is_active = False
    db.flush()
    return end_admin_sessions(db, user.id)


def reactivate_admin(db: Session, user: AdminUser) -> None:
    """Let a deactivated admin log in again (their old sessions stay ended)."""
    user.is_active = True
    db.flush()


def delete_admin(db: Session, user: AdminUser) -> None:
    """Delete ``user`` with their sessions and API tokens; what they read or resolved stays.

    The foreign keys cascade too; deleting explicitly keeps that true on a SQLite
    connection opened without ``PRAGMA foreign_keys``, so nothing of theirs can ever
    match an admin created later with the same row id.
    """
    end_admin_sessions(db, user.id)
    db.execute(
        delete(ApiToken)
        .where(ApiToken.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    db.delete(user)
    db.flush()


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; None (no such admin) takes as long, and fails.

    Needs no database: a login reads the hash, hands its connection back, then checks it,
    so a burst of slow hash checks never holds the pool's connections.
    """
    if stored_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(stored_hash, password)


def authenticate(db: Session, email: str, password: str) -> AdminUser | None:
    """The active admin these credentials belong to, or None."""
    user = find_admin(db, email)
    if not password_matches(user.password_hash if user else None, password):
        return None
    return user if user is not None and user.is_active else None


def admin_for_host_user(
    db: Session, *, external_id: str, email: str, display_name: str
) -> AdminUser:
    """The admin standing for a host app's user, created (or linked by email) on first use.

    The host's stable user id is the key; an existing admin with the same email and no
    host id yet is linked rather than duplicated. The name follows the host's. Such an
    admin gets an unguessable password: they sign in through the host, never our form.
    """
    admin = db.scalars(select(AdminUser).where(AdminUser.external_id == external_id)).first()
    address = email
    if admin is None and email:
        admin = find_admin(db, email)
        if admin is not None and admin.external_id not in (None, external_id):
            admin, address = None, ""  # that email is another host user's: keep them apart
    if admin is None:
        admin = AdminUser(
            email=address or f"host-user-{external_id}@host.invalid",
            password_hash=generate_password_hash(secrets.token_urlsafe(32)),
            is_active=True,
        )
        db.add(admin)
    admin.external_id = external_id
    name = display_name or (email.split("@", 1)[0] if email else external_id)
    if admin.display_name != name:
        admin.display_name = name
    db.flush()
    return admin
