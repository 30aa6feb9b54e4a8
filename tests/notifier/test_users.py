"""Admin accounts: hashed passwords, case-insensitive unique emails, active flag."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier import ValidationError
from notifier.accounts.users import authenticate, create_admin
from notifier.errors import DuplicateAdminError
from notifier.models import AdminUser


def test_database_enforces_case_insensitive_unique_email(db_session: Session) -> None:
    db_session.add(AdminUser(email="Ops@Example.com", password_hash="x"))
    db_session.commit()
    db_session.add(AdminUser(email="ops@example.COM", password_hash="y"))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()


def test_create_admin_refuses_duplicates_and_bad_input(db_session: Session) -> None:
    create_admin(db_session, email="a@example.com", password="long enough")
    with pytest.raises(DuplicateAdminError):
        create_admin(db_session, email="A@EXAMPLE.com", password="long enough")
    with pytest.raises(ValidationError) as info:
        create_admin(db_session, email="not-an-email", password="short")
    assert set(info.value.errors) == {"email", "password"}


def test_authenticate_checks_password_and_active_flag(db_session: Session) -> None:
    user = create_admin(db_session, email="a@example.com", password="long enough")
    assert user.password_hash.startswith("scrypt:")
    assert authenticate(db_session, "A@example.com", "long enough") == user
    assert authenticate(db_session, "a@example.com", "wrong password") is None
    assert authenticate(db_session, "nobody@example.com", "long enough") is None
    user.is_active = False
    assert authenticate(db_session, "a@example.com", "long enough") is None
