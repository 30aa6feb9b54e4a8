"""Act where the alert lands: signed "Acknowledge", "Snooze 1 h" and "Resolve" links.

Emails, Slack and Teams messages about an open alert carry these links; each is signed,
bound to its recipient admin (email) or its channel's endpoint (chat), expires after
:data:`ACTION_LINK_LIFETIME`, and works once. The web side shows a confirmation page and
acts on its POST; this package signs, checks and records.
"""

from __future__ import annotations

from .links import ACTION_LINK_LIFETIME as ACTION_LINK_LIFETIME
from .links import ACTIONS as ACTIONS
from .links import ActionLink as ActionLink
from .links import ActionLinkError as ActionLinkError
from .links import action_key as action_key
from .links import sign as sign_action
from .uses import Checked as Checked
from .uses import action_summary as action_summary
from .uses import use_link as use_action_link
from .uses import verify as verify_action_link

__all__ = [
    "ACTIONS",
    "ACTION_LINK_LIFETIME",
    "ActionLink",
    "ActionLinkError",
    "Checked",
    "action_key",
    "action_summary",
    "sign_action",
    "use_action_link",
    "verify_action_link",
]
