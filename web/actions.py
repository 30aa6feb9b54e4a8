"""The page behind a message's action links ("Acknowledge", "Snooze 1 h", "Resolve").

A GET only shows what the link would do (mail scanners and chat unfurlers fetch links);
the page's form POSTs to act. An email's link is bound to its recipient and needs no
session: the signed token in the URL is the credential, and the form must send the same
token in its body, so a POST from another site cannot act without knowing it (as with the
unsubscribe page, a request with the token is the admin's). A Slack or Teams link names
a channel, not an admin, so whoever opens it signs in first and is the one recorded; that
form also carries the session's CSRF token. Every refusal changes nothing; bad tokens
count against the client's address like bad API tokens do (429 past the limit).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import redirect, render_template, request
from werkzeug.wrappers import Response

from notifier import AlreadyResolvedError, ValidationError
from notifier.actions import (
    ACTION_LINK_LIFETIME,
    ActionLinkError,
    Checked,
    action_summary,
    use_action_link,
    verify_action_link,
)
from notifier.models import AdminUser

from .auth import CSRF_FORM_FIELD, bad_token_wait, count_bad_token, csrf_valid, current_admin
from .host_login import sign_in_url
from .pages import pages_blueprint
from .routing import guest_route
from .state import db_session

#: The form field carrying the link's token back (it must equal the one in the URL).
TOKEN_FIELD = "token"  # noqa: S105 (a form field name, not a secret)
_TEMPLATE = "notifier/action_confirm.html"
_STATUS = {
    "invalid": 404,
    "expired": 410,
    "used": 410,
    "inactive": 403,
    "other_admin": 403,
    "resolved": 409,
    "form": 403,
    "notes": 422,
}
_SOURCE_NAMES = {"email": "an email", "slack": "a Slack message", "teams": "a Teams message"}

Page = tuple[str, int, dict[str, str]] | Response


def _refused(reason: str, **context: Any) -> tuple[str, int, dict[str, str]]:
    page = render_template(
        _TEMPLATE, state="refused", reason=reason, days=ACTION_LINK_LIFETIME.days, **context
    )
    return page, _STATUS[reason], {}


def _actor(checked: Checked) -> AdminUser | Response:
    """Who acts: the email's recipient, or the signed-in admin for a chat link.

    An ActionLinkError when someone else is signed in than the email's recipient; a
    redirect to the login for a chat link without a session.
    """
    signed_in = current_admin()
    if checked.recipient is None:
        if signed_in is None:
            return redirect(sign_in_url(request.path))
        return signed_in
    if signed_in is not None and signed_in.id != checked.recipient.id:
        raise ActionLinkError("other_admin", "this link was sent to another admin")
    return checked.recipient


def _form_ok(token: str, checked: Checked) -> bool:
    """The POST carries the link's own token (and, signed in for a chat link, the CSRF one)."""
    sent = request.form.get(TOKEN_FIELD, "")
    if not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), token.encode()):
        return False
    return checked.recipient is not None or csrf_valid(request.form.get(CSRF_FORM_FIELD))


@guest_route(pages_blueprint, "/act/<token>", methods=["GET", "POST"])
def action_link(token: str) -> Page:
    """GET: say what the link will do, with a confirm button; POST: do it, once."""
    wait = bad_token_wait()
    if wait:
        page = render_template(_TEMPLATE, state="throttled", wait=wait)
        return page, 429, {"Retry-After": str(wait)}
    db = db_session()
    try:
        checked = verify_action_link(db, token)
        actor = _actor(checked)
    except ActionLinkError as exc:
        if exc.reason == "invalid":
            count_bad_token()
        return _refused(exc.reason)
    if isinstance(actor, Response):
        return actor
    context = {
        "alert": checked.alert,
        "link": checked.link,
        "actor": actor,
        "what": action_summary(checked.link),
        "source": _SOURCE_NAMES[checked.link.source],
    }
    if checked.alert.is_resolved:
        return _refused("resolved", **context)
    if request.method == "GET":
        page = render_template(_TEMPLATE, state="confirm", token=token, **context)
        return page, 200, {}
    if not _form_ok(token, checked):
        return _refused("form", **context)
    try:
        alert = use_action_link(
            db, checked, actor=actor, notes=request.form.get("notes", "").strip()
        )
        db.commit()
    except (ActionLinkError, AlreadyResolvedError) as exc:
        db.rollback()
        return _refused(exc.reason if isinstance(exc, ActionLinkError) else "resolved", **context)
    except ValidationError as exc:  # the resolution notes: too long, or control characters
        db.rollback()
        page = render_template(
            _TEMPLATE, state="confirm", token=token, problem=exc.errors, **context
        )
        return page, _STATUS["notes"], {}
    return render_template(_TEMPLATE, state="done", **(context | {"alert": alert})), 200, {}
