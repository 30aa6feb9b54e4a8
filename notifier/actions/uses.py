"""Checking an action link against the database, and using it once.

A link works once: using it inserts its token's digest into ``notifier_action_uses`` in
the transaction that acts, so two clicks at once (a double submit, a scanner racing the
admin) act once; the second finds the row, or fails on its key. The row also records who
acted and where the link came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..alerts import platform_alert_service
from ..models import ActionUse, AdminUser, DeliveryEndpoint, PlatformAlert
from ..types import utcnow
from .links import (
    ACKNOWLEDGE,
    ACTION_LINK_LIFETIME,
    RESOLVE,
    SNOOZE,
    SNOOZE_FOR,
    ActionLink,
    ActionLinkError,
    action_key,
    read,
)

__all__ = ["Checked", "action_summary", "use_link", "verify"]


@dataclass(frozen=True, slots=True)
class Checked:
    """A link that may be used: what it says, its alert, and the admin it was sent to."""

    link: ActionLink
    alert: PlatformAlert
    #: The recipient admin of an email link; None for a chat link (the confirmer signs in).
    recipient: AdminUser | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _used(db: Session, token: str) -> bool:
    return db.get(ActionUse, _digest(token)) is not None


def verify(db: Session, token: str, *, now: datetime | None = None) -> Checked:
    """The link, its alert and its admin, or ActionLinkError saying why it cannot be used.

    Reasons: ``invalid`` (forged, or its alert, admin or endpoint is gone, or the endpoint
    now sends elsewhere than the link's channel), ``expired``, ``used``, ``inactive``.
    """
    link = read(action_key(db), token, now=now)
    alert = db.get(PlatformAlert, link.alert_id)
    if alert is None:
        raise ActionLinkError("invalid", "this link's alert is gone")
    recipient = None
    if link.needs_sign_in:
        endpoint = db.get(DeliveryEndpoint, link.bound_to)
        if endpoint is None or endpoint.channel.value != link.source:
            raise ActionLinkError("invalid", "this link's channel is gone")
    else:
        recipient = db.get(AdminUser, link.bound_to)
        if recipient is None:
            raise ActionLinkError("invalid", "this link's account is gone")
        if not recipient.is_active:
            raise ActionLinkError("inactive", "this link's account is deactivated")
    if _used(db, token):
        raise ActionLinkError("used", "this link was used already")
    return Checked(link, alert, recipient)


def use_link(
    db: Session, checked: Checked, *, actor: AdminUser, notes: str = "", now: datetime | None = None
) -> PlatformAlert:
    """Do what the link says, as ``actor``, once; the alert after it.

    ``actor`` is the recipient for an email link, the signed-in admin for a chat link (the
    caller checks which). Raises ActionLinkError ``used`` when the link was used meanwhile,
    AlreadyResolvedError when the alert is resolved; after either the caller rolls back,
    so nothing is recorded. Does not commit.
    """
    now = now or utcnow()
    link = checked.link
    # Past the lifetime a row guards nothing: its link has expired (used after issued).
    db.execute(delete(ActionUse).where(ActionUse.used_at < now - ACTION_LINK_LIFETIME))
    values = {
        "token_digest": _digest(link.token),
        "alert_id": link.alert_id,
        "action": link.action,
        "source": link.source,
        "user_id": actor.id,
        "used_at": now,
    }
    try:
        # A click at the same moment inserted it first: this transaction is lost (roll back).
        db.execute(insert(ActionUse).values(**values))
    except IntegrityError:
        raise ActionLinkError("used", "this link was used already") from None
    service = platform_alert_service
    if link.action == ACKNOWLEDGE:
        alert = service.acknowledge_alert(db, link.alert_id, user_id=actor.id, via=link.source)
    elif link.action == SNOOZE:
        alert = service.snooze_alert(db, link.alert_id, until=now + SNOOZE_FOR, now=now)
    else:
        assert link.action == RESOLVE
        alert = service.resolve_alert(
            db,
            link.alert_id,
            user_id=actor.id,
            resolution_notes=notes or f"Resolved from a link in {_where(link.source)}.",
        )
    assert alert is not None  # verify() found it, and alerts are never deleted while open
    return alert


def _where(source: str) -> str:
    return "an email" if source == "email" else f"a {source.capitalize()} message"


def action_summary(link: ActionLink) -> str:
    """What confirming will do, in words, for the confirmation page."""
    if link.action == ACKNOWLEDGE:
        return "acknowledge this alert (reminders about it stop)"
    if link.action == SNOOZE:
        hours = int(SNOOZE_FOR.total_seconds() // 3600)
        return f"snooze this alert for {hours} hour (it stays silent until then)"
    return "resolve this alert"
