"""notifier web: the Flask app factory, the NotifierWeb extension, and the auth helpers."""

from __future__ import annotations

from .app import create_app as create_app
from .auth import csrf_token as csrf_token
from .auth import current_admin as current_admin
from .auth import login_required as login_required
from .extension import NotifierWeb as NotifierWeb
from .host_login import HostLogin as HostLogin
from .host_login import HostUser as HostUser
from .state import db_session as db_session

__all__ = [
    "HostLogin",
    "HostUser",
    "NotifierWeb",
    "create_app",
    "csrf_token",
    "current_admin",
    "db_session",
    "login_required",
]
