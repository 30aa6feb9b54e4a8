"""The signed-in admin's notification settings page, and the one-click unsubscribe page.

The settings page renders the admin's preferences; its form saves through the JSON API
(``settings.js``), so every rule is the API's. The unsubscribe page needs no login: the
signed token in its URL is the credential (RFC 8058), so its POST carries no CSRF token.
"""

from __future__ import annotations

from flask import render_template, request, url_for

from notifier import UnsubscribeLinkError
from notifier.delivery import (
    UNSUBSCRIBE_LINK_LIFETIME,
    apply_unsubscribe,
    describe_unsubscribe,
    verify_unsubscribe,
)
from notifier.preferences import category_table, preferences_document
from notifier.validation import time_zones

from .auth import current_admin, login_required
from .pages import pages_blueprint
from .routing import guest_route
from .state import db_session

# Gone for good (410) once expired; forbidden (403) while the account is deactivated.
_REFUSED_STATUS = {"invalid": 404, "expired": 410, "inactive": 403}


@guest_route(pages_blueprint, "/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe_link(token: str) -> tuple[str, int]:
    """GET: confirm with a button; POST (the button, or a mail client's one click): do it."""
    db = db_session()
    try:
        admin, what = verify_unsubscribe(db, token)
    except UnsubscribeLinkError as exc:
        status = _REFUSED_STATUS[exc.reason]
        return render_template(
            "notifier/unsubscribe.html",
            valid=False,
            reason=exc.reason,
            lifetime_days=UNSUBSCRIBE_LINK_LIFETIME.days,
        ), status
    changed = False
    if request.method == "POST":
        changed = apply_unsubscribe(db, admin.id, what)
        db.commit()
    return render_template(
        "notifier/unsubscribe.html",
        valid=True,
        done=request.method == "POST",
        changed=changed,
        email=admin.email,
        what=describe_unsubscribe(what),
    ), 200


@guest_route(pages_blueprint, "/settings")
@login_required
def notification_settings() -> str:
    """The admin's matrix of types x channels, quiet hours and digest, saved by the API."""
    admin = current_admin()
    assert admin is not None
    return render_template(
        "notifier/settings.html",
        document=preferences_document(db_session(), admin.id),
        categories=category_table(),
        zones=sorted(time_zones()),
        api_url=url_for("notifier_api.get_preferences"),
    )
