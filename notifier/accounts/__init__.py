"""Admin accounts: users and their credentials, login sessions kept on the server, API tokens."""

from __future__ import annotations

from .sessions import SESSION_LIFETIME as SESSION_LIFETIME
from .sessions import end_admin_sessions as end_admin_sessions
from .sessions import end_session as end_session
from .sessions import prune_expired_sessions as prune_expired_sessions
from .sessions import session_admin as session_admin
from .sessions import start_session as start_session
from .tokens import TokenNotFoundError as TokenNotFoundError
from .tokens import create_token as create_token
from .tokens import find_token as find_token
from .tokens import revoke_token as revoke_token
from .tokens import verify_token as verify_token
from .users import admin_for_host_user as admin_for_host_user
from .users import authenticate as authenticate
from .users import create_admin as create_admin
from .users import find_admin as find_admin
from .users import password_matches as password_matches

__all__ = [
    "SESSION_LIFETIME",
    "TokenNotFoundError",
    "admin_for_host_user",
    "authenticate",
    "create_admin",
    "create_token",
    "end_admin_sessions",
    "end_session",
    "find_admin",
    "find_token",
    "password_matches",
    "prune_expired_sessions",
    "revoke_token",
    "session_admin",
    "start_session",
    "verify_token",
]
