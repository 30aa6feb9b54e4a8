"""Signed action links ("Acknowledge", "Snooze 1 h", "Resolve") carried by alert messages.

A link's token is signed with a key kept in the database (``notifier_keys``, its own row
beside the unsubscribe links' key), so the dispatcher that writes a message and the web
process that answers the click agree without sharing a setting; deleting the row voids
every action link ever sent. A token names the alert, the action, where it was sent
(``email``, ``slack`` or ``teams``) and to whom: the recipient admin for an email, the
endpoint for a chat message (a channel is read by many, so the person who confirms signs
in and is the one recorded). It carries its signing time (it works for
:data:`ACTION_LINK_LIFETIME`) and a random part, so each link is one of a kind and the
once-only record (:mod:`.uses`) can tell it apart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from ..errors import NotifierError
from ..models import NotifierKey
from ..types import UTCDateTime, utcnow

__all__ = [
    "ACKNOWLEDGE",
    "ACTIONS",
    "ACTION_LINK_LIFETIME",
    "CHAT_SOURCES",
    "EMAIL",
    "RESOLVE",
    "SNOOZE",
    "SNOOZE_FOR",
    "SOURCES",
    "ActionLink",
    "ActionLinkError",
    "action_key",
    "read",
    "sign",
    "stored_key",
]

ACKNOWLEDGE = "acknowledge"
SNOOZE = "snooze"
RESOLVE = "resolve"
#: The actions a message offers, in the order it shows them, with their button labels.
ACTIONS = {ACKNOWLEDGE: "Acknowledge", SNOOZE: "Snooze 1 h", RESOLVE: "Resolve"}
#: How long "Snooze 1 h" snoozes.
SNOOZE_FOR = timedelta(hours=1)
EMAIL = "email"
#: Where an action came from: a message's link (email, Slack, Teams) or the admin's own
#: pages and API (``web``).
SOURCES = (EMAIL, "slack", "teams", "web")
#: Sources whose link names a channel's endpoint, not an admin: the confirmer signs in.
CHAT_SOURCES = frozenset({"slack", "teams"})
#: How long a link works after its message was sent: a week. Alerts are acted on within
#: hours; a week covers a long weekend and a holiday inbox, and an old message found later
#: holds no live link.
ACTION_LINK_LIFETIME = timedelta(days=7)

_KEY_NAME = "actions"
_SALT = "notifier.actions"
_INSERT_KEY = text(
    "INSERT INTO notifier_keys (name, value, created_at) VALUES (:n, :v, :at)"
    " ON CONFLICT (name) DO NOTHING"
).bindparams(bindparam("at", type_=UTCDateTime()))


class ActionLinkError(NotifierError):
    """An action link that cannot be used.

    ``reason``: ``invalid`` (forged, void, or what it names is gone), ``expired``, ``used``
    (it worked once already), ``inactive`` (its admin is deactivated) or ``other_admin``
    (the browser is signed in as someone else than the admin it was sent to).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def stored_key(db: Session, name: str) -> str:
    """The secret named ``name`` in ``notifier_keys``, made on first use.

    Call it in a write transaction on SQLite. Read once per session: a run that signs many
    links reads it once.
    """
    cache: dict[str, str] = db.info.setdefault("notifier_keys", {})
    if name in cache:
        return cache[name]
    key = db.scalar(select(NotifierKey.value).where(NotifierKey.name == name))
    if key is None:
        # Two processes may make one at once: the first insert wins, both read it back.
        db.execute(_INSERT_KEY, {"n": name, "v": secrets.token_urlsafe(32), "at": utcnow()})
        key = db.scalar(select(NotifierKey.value).where(NotifierKey.name == name))
    assert key is not None
    cache[name] = key
    return key


def action_key(db: Session) -> str:
    """The action links' key (made on first use; call it in a write transaction on SQLite)."""
    return stored_key(db, _KEY_NAME)


@dataclass(frozen=True, slots=True)
class ActionLink:
    """What a verified token says: which alert, what to do, where it was sent, to whom."""

    alert_id: int
    action: str
    source: str  # email, slack or teams
    #: The recipient admin's id (email) or the endpoint's id (slack, teams).
    bound_to: int
    issued_at: datetime
    token: str

    @property
    def needs_sign_in(self) -> bool:
        """Whether the person confirming must sign in (a chat link names no admin)."""
        return self.source in CHAT_SOURCES


def sign(key: str, alert_id: int, action: str, source: str, bound_to: int, *, now: datetime) -> str:
    """A URL-safe token for ``action`` on alert ``alert_id``, sent by ``source`` to ``bound_to``."""
    if action not in ACTIONS or source not in SOURCES or source == "web":
        raise ValueError(f"no action link for {action!r} from {source!r}")
    payload = [alert_id, action, source, bound_to, int(now.timestamp()), secrets.token_urlsafe(6)]
    return URLSafeSerializer(key, salt=_SALT).dumps(payload)


def read(key: str, token: str, *, now: datetime | None = None) -> ActionLink:
    """The link a token stands for, checked for its signature and age only.

    Raises ActionLinkError ``invalid`` or ``expired``; whether the admin, the endpoint and
    the alert still exist, and whether it was used, is :func:`.uses.verify`'s part.
    """
    try:
        payload = URLSafeSerializer(key, salt=_SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        payload = None
    if not isinstance(payload, list) or len(payload) != 6:
        raise ActionLinkError("invalid", "this link is not valid")
    alert_id, action, source, bound_to, issued, _nonce = payload
    if (
        not all(isinstance(n, int) for n in (alert_id, bound_to, issued))
        or action not in ACTIONS
        or source not in SOURCES
    ):
        raise ActionLinkError("invalid", "this link is not valid")
    issued_at = datetime.fromtimestamp(issued, tz=UTC)
    if issued_at < (now or utcnow()) - ACTION_LINK_LIFETIME:
        raise ActionLinkError("expired", "this link has expired")
    return ActionLink(alert_id, action, source, bound_to, issued_at, token)
