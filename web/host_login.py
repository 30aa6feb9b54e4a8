"""The host's login: when the notifier is mounted in an app that signs its users in itself.

Standalone, the notifier has its own login form. In a host app, the host says who the
current admin is and where its login page is::

    NotifierWeb(app, host_login=HostLogin.flask_login(is_admin=lambda user: user.is_admin))

Then the notifier's form is not used: a page request without an admin goes to the host's
login URL with ``next``; a host user is an admin of the notifier by the host's say, and is
mapped to an ``notifier_admin_users`` row (by the host's stable user id, else by email) created on
first use, so "read by" and "resolved by" name them. Bearer tokens keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from notifier.accounts import admin_for_host_user
from notifier.models import AdminUser

from .state import app_state, db_session


@dataclass(frozen=True)
class HostUser:
    """A host user as the notifier records them: a stable id, an email and a name."""

    external_id: str
    email: str = ""
    name: str = ""


@dataclass(frozen=True)
class HostLogin:
    """How the notifier asks the host who is signed in, and where its login page is.

    ``current_admin`` returns the signed-in user if they may use the notifier, else None;
    ``signed_in`` says whether anyone is signed in (a signed-in non-admin gets a 403, not a
    login loop); ``login_url`` turns the page to come back to into the host's login URL.
    """

    current_admin: Callable[[], HostUser | None]
    login_url: Callable[[str], str]
    signed_in: Callable[[], bool] | None = None

    @classmethod
    def flask_login(
        cls,
        is_admin: Callable[[Any], bool],
        *,
        describe: Callable[[Any], HostUser] | None = None,
        login_view: str | None = None,
    ) -> HostLogin:
        """Flask-Login's ``current_user``; ``is_admin(user)`` says who may use the notifier.

        ``describe(user)`` maps a user to a :class:`HostUser` (default: ``get_id()``, and
        the ``email`` and ``name`` attributes if present). The login page is
        ``login_view`` (default: the login manager's ``login_view``).
        """
        from flask_login import current_user
        from flask_login import login_url as flask_login_url

        to_host_user = describe or _describe

        def signed_in() -> bool:
            return bool(current_user and current_user.is_authenticated)

        def current_admin() -> HostUser | None:
            if not signed_in() or not is_admin(current_user._get_current_object()):
                return None
            return to_host_user(current_user._get_current_object())

        def login_url(next_url: str) -> str:
            manager = getattr(current_app, "login_manager", None)
            view = login_view or getattr(manager, "login_view", None)
            if not view:
                raise RuntimeError(
                    "HostLogin.flask_login needs a login page: set login_manager.login_view "
                    "or pass login_view='your_login_endpoint'"
                )
            return str(flask_login_url(view, next_url=next_url))

        return cls(current_admin=current_admin, login_url=login_url, signed_in=signed_in)

    @classmethod
    def at(cls, current_admin: Callable[[], HostUser | None], login_url: str) -> HostLogin:
        """A host login given by a callable and a fixed login URL (``?next=`` appended)."""

        def build(next_url: str) -> str:
            joiner = "&" if "?" in login_url else "?"
            return f"{login_url}{joiner}{urlencode({'next': next_url})}"

        return cls(current_admin=current_admin, login_url=build)


def _describe(user: Any) -> HostUser:
    email = str(getattr(user, "email", "") or "")
    name = str(getattr(user, "name", "") or getattr(user, "display_name", "") or "")
    return HostUser(external_id=str(user.get_id()), email=email, name=name)


def host_login() -> HostLogin | None:
    """The current app's host login, or None when the notifier uses its own form."""
    configured: HostLogin | None = app_state().host_login
    return configured


def host_admin(login: HostLogin) -> AdminUser | None:
    """The admin standing for the host's signed-in user (created on first use), or None."""
    user = login.current_admin()
    if user is None or not user.external_id:
        return None
    session = db_session()
    admin = session.scalars(
        select(AdminUser).where(AdminUser.external_id == user.external_id)
    ).first()
    wanted = user.name or (user.email.split("@", 1)[0] if user.email else user.external_id)
    if admin is None or admin.display_name != wanted:
        # Written in a short transaction of its own, so a host's db.session (shared through
        # NotifierWeb(db=...)) is never committed on the host's behalf.
        for attempt in (1, 2):
            try:
                with app_state().database.session_scope() as own:
                    mapped = admin_for_host_user(
                        own, external_id=user.external_id, email=user.email, display_name=wanted
                    )
                break
            except IntegrityError:  # another request created them first: read theirs
                if attempt == 2:
                    raise
        # Merged without a query: the request's transaction may predate the row (SQLite
        # reads from a snapshot), and the committed state in hand is the current one.
        admin = session.merge(mapped, load=False)
    return admin if admin is not None and admin.is_active else None


def is_signed_in_elsewhere(login: HostLogin) -> bool:
    """Whether a host user is signed in (though not an admin of the notifier)."""
    return bool(login.signed_in and login.signed_in())


def sign_in_url(next_url: str | None = None) -> str:
    """Where to send a visitor who must sign in: the host's login, or the notifier's form."""
    from flask import url_for

    target = next_url if next_url is not None else request.full_path.rstrip("?")
    login = host_login()
    if login is not None:
        return login.login_url(target)
    return url_for("notifier_auth.login", next=target)
