"""Who is calling: session login for browsers (with CSRF), bearer tokens for API clients.

The browser's cookie holds only a random id of a session kept in the database
(``notifier.accounts.sessions``), so logging out, "log out everywhere", deactivation and a new
password end it at once, and its lifetime is fixed at login. The notifier may share the
cookie with a host app, so it only ever adds or removes its own ``notifier_*`` keys.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response as BaseResponse

from notifier import metrics
from notifier.accounts import (
    SESSION_LIFETIME,
    end_admin_sessions,
    end_session,
    find_admin,
    password_matches,
    prune_expired_sessions,
    session_admin,
    start_session,
    verify_token,
)
from notifier.models import AdminUser
from notifier.validation import is_app_path

from .host_login import host_admin, host_login, is_signed_in_elsewhere, sign_in_url
from .routing import guest_route
from .state import ADMIN_PREFIX, app_state, db_session

SESSION_ID_KEY = "notifier_sid"
SESSION_CSRF_KEY = "notifier_csrf"
# Every key the notifier puts in the (possibly shared) cookie; the first one is the
# pre-0.2 login, dropped when seen so an old cookie leaves nothing behind.
_SESSION_KEYS = ("notifier_admin_id", SESSION_ID_KEY, SESSION_CSRF_KEY)
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

auth_blueprint = Blueprint(
    "notifier_auth", __name__, url_prefix=ADMIN_PREFIX, template_folder="templates"
)
_STATIC = str(Path(__file__).parent / "static")

P = ParamSpec("P")
R = TypeVar("R")


class _Caller:
    """The outcome of reading a request's credentials."""

    __slots__ = ("admin", "method")

    def __init__(self, admin: AdminUser | None, method: str) -> None:
        self.admin = admin
        self.method = method  # "bearer", "session", "bad-token" or "none"


def csrf_token() -> str:
    """The session's CSRF token (created on first use); pages put it in a meta tag."""
    token = session.get(SESSION_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF_KEY] = token
    return token


def csrf_valid(sent: str | None) -> bool:
    """Whether ``sent`` is this session's CSRF token (compared in constant time)."""
    expected = session.get(SESSION_CSRF_KEY)
    if not isinstance(expected, str) or not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "surrogatepass"))


def identify() -> _Caller:
    """Read the request's credentials once: a bearer token wins over the session cookie.

    A request that sends an Authorization header is judged by it alone, so a bad token is
    never rescued by a cookie. The admin is reloaded on every request, so deactivating an
    account or revoking a token takes effect at once.
    """
    caller: _Caller | None = g.get("_notifier_caller")
    if caller is not None:
        return caller
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        found = None
        if scheme.lower() == "bearer" and credentials.strip():
            found = verify_token(db_session(), credentials.strip())
            if found and db_session().dirty:
                try:
                    db_session().commit()  # keep last_used_at (set once a minute) on reads
                except OperationalError:
                    # Best effort: on SQLite, concurrent first uses of one token race for
                    # the write lock (a read transaction cannot wait to upgrade); another
                    # request is recording the same minute, so this one just reads on.
                    db_session().rollback()
        caller = _Caller(found[1], "bearer") if found else _Caller(None, "bad-token")
    elif (login := host_login()) is not None:
        admin = host_admin(login)  # the host signs users in: see host_login.py
        caller = _Caller(admin, "session") if admin is not None else _Caller(None, "none")
    else:
        session_id = session.get(SESSION_ID_KEY)
        admin = session_admin(db_session(), session_id) if isinstance(session_id, str) else None
        caller = _Caller(admin, "session") if admin is not None else _Caller(None, "none")
    g._notifier_caller = caller
    return caller


def current_admin() -> AdminUser | None:
    """The admin making this request (by token or session), or None."""
    return identify().admin


def login_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """For pages: send a visitor without a session to the login, coming back here after."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if current_admin() is None:
            login = host_login()
            if login is not None and is_signed_in_elsewhere(login):
                abort(
                    403,
                    "You are signed in, but this account is not a notifier admin; "
                    "ask an administrator for access.",
                )
            return redirect(sign_in_url(request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def forbidden_page(exc: Forbidden) -> tuple[str, int]:
    """A 403 on the pages as a page in the layout that says why, not Werkzeug's bare text."""
    return render_template("notifier/forbidden.html", reason=exc.description), 403


def safe_next(target: str | None) -> str:
    """``target`` if it is a path inside this app, else the default landing page."""
    if target and is_app_path(target):
        return target
    return url_for("notifier_pages.notifications")


def _session_lifetime() -> timedelta:
    """``NOTIFIER_SESSION_LIFETIME`` (seconds or a timedelta) from the app config."""
    value = current_app.config.get("NOTIFIER_SESSION_LIFETIME", SESSION_LIFETIME)
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def _forget_login() -> None:
    """Remove the notifier's keys from the cookie, leaving any host app's keys alone."""
    for key in _SESSION_KEYS:
        session.pop(key, None)


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def bad_token_wait() -> int:
    """Seconds this client must wait after too many bad bearer tokens, or 0.

    One count per client address for every door that takes a bearer token (the API and
    ``/metrics``): guesses at either use up the same allowance.
    """
    return app_state().auth_throttle.retry_after(_client_ip())


def count_bad_token() -> None:
    """Count one bad bearer token (API or ``/metrics``) against this client's address."""
    app_state().auth_throttle.fail(_client_ip())
    metrics.inc("notifier_token_failures_total")


def _reserve_attempt(email: str) -> int:
    """Count a login attempt before its password is checked; the seconds to wait, or 0.

    Per address and email, and (4x looser) per address: slows guessing one password and
    spraying many accounts, without letting a stranger lock an admin out everywhere.
    Counted first, atomically, so a burst sent at once is checked no more than the limit
    allows; a success then clears its address-and-email count, and stays one of the
    address's attempts.
    """
    state = app_state()
    wait = state.login_throttle.reserve(f"{_client_ip()}\n{email}")
    return wait or state.login_ip_throttle.reserve(_client_ip())


def _check_credentials(email: str, password: str) -> AdminUser | None:
    """The active admin with these credentials, or None.

    The slow password hash is checked after the lookup's connection went back to the pool:
    logins at once never hold more connections than the pool has (which answers 503).
    """
    with app_state().database.sessionmaker() as db:
        found = find_admin(db, email)
        admin_id, stored = (
            (found.id, found.password_hash) if found and found.is_active else (0, None)
        )
    if not password_matches(stored, password):
        return None
    admin = db_session().get(AdminUser, admin_id)
    return admin if admin is not None and admin.is_active else None


@guest_route(auth_blueprint, "/static/<path:filename>", endpoint="static")
def static(filename: str) -> Response:
    """The notifier's CSS and scripts (under its own prefix, so a host's /static is intact)."""
    max_age = current_app.get_send_file_max_age(filename)
    return send_from_directory(_STATIC, filename, max_age=max_age)


@guest_route(auth_blueprint, "/login", methods=["GET", "POST"])
def login() -> Response | BaseResponse | tuple[str, int, dict[str, str]] | str:
    """The login form; on success, a fresh session and a redirect to ``next``."""
    next_url = safe_next(request.values.get("next"))
    if host_login() is not None:  # the host signs users in; our form is not used
        return redirect(sign_in_url(next_url))
    if request.method == "GET":
        if current_admin() is not None:
            return redirect(next_url)
        return render_template("notifier/login.html", next_url=next_url, error=None)

    email = request.form.get("email", "").strip().lower()
    wait = 0
    if not csrf_valid(request.form.get(CSRF_FORM_FIELD) or request.headers.get(CSRF_HEADER)):
        error, status = "Your form expired. Please try again.", 403
    elif wait := _reserve_attempt(email):
        error, status = f"Too many failed attempts. Try again in {wait} seconds.", 429
    else:
        admin = _check_credentials(email, request.form.get("password", ""))
        if admin is not None:
            app_state().login_throttle.reset(f"{_client_ip()}\n{email}")
            db = db_session()
            old_id = session.get(SESSION_ID_KEY)
            if isinstance(old_id, str):
                end_session(db, old_id)  # a login over a live one replaces it
            prune_expired_sessions(db)
            session_id = start_session(db, admin, _session_lifetime())
            db.commit()
            # Nothing of ours from before the login survives it, the CSRF token included;
            # a host app's keys in the same cookie are not ours to touch.
            _forget_login()
            session[SESSION_ID_KEY] = session_id
            if current_app.config.get("NOTIFIER_PERMANENT_LOGIN"):
                # Standalone the cookie is ours: keep it across browser restarts. A host's
                # cookie keeps the host's own choice (the server-side lifetime holds either way).
                session.permanent = True
            csrf_token()
            return redirect(next_url)
        metrics.inc("notifier_login_failures_total")
        error, status = "Wrong email or password.", 401
    headers = {"Retry-After": str(wait)} if status == 429 else {}
    page = render_template("notifier/login.html", next_url=next_url, error=error, email=email)
    return page, status, headers


@guest_route(auth_blueprint, "/logout", methods=["POST"])
def logout() -> BaseResponse | tuple[str, int]:
    """End the session (POST with the CSRF token, so no other site can log an admin out)."""
    if not csrf_valid(request.form.get(CSRF_FORM_FIELD) or request.headers.get(CSRF_HEADER)):
        return "CSRF token missing or wrong; reload the page and try again.", 403
    session_id = session.get(SESSION_ID_KEY)
    if isinstance(session_id, str):
        end_session(db_session(), session_id)
        db_session().commit()
    _forget_login()
    return redirect(url_for("notifier_auth.login"))


@guest_route(auth_blueprint, "/logout-everywhere", methods=["POST"])
def logout_everywhere() -> BaseResponse | tuple[str, int]:
    """End every session of the logged-in admin, on every browser (POST with CSRF token)."""
    if not csrf_valid(request.form.get(CSRF_FORM_FIELD) or request.headers.get(CSRF_HEADER)):
        return "CSRF token missing or wrong; reload the page and try again.", 403
    session_id = session.get(SESSION_ID_KEY)
    admin = session_admin(db_session(), session_id) if isinstance(session_id, str) else None
    if admin is not None:  # the notifier's own login; a host's sessions are the host's
        end_admin_sessions(db_session(), admin.id)
        db_session().commit()
    _forget_login()
    return redirect(url_for("notifier_auth.login"))
