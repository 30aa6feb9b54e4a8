"""Delivery: the dispatcher, the channels it sends to, and what admins see of it.

Delivery: the dispatcher that sends outbox rows to email, signed webhooks, Slack, Teams,
PagerDuty (Events API v2) and Apprise URLs,
the endpoints admins configure, digests, unsubscribe links and the delivery log.
"""

from __future__ import annotations

from .digests import DigestReport as DigestReport
from .digests import run_digests as run_digests
from .dispatch import DispatcherThread as DispatcherThread
from .dispatch import DispatchSettings as DispatchSettings
from .dispatch import dispatch_batches as dispatch_batches
from .dispatch import dispatch_due as dispatch_due
from .dispatch import replay as replay_failed_delivery
from .dispatch import replay_failed_since as replay_failed_since
from .endpoints import NAME_MAX as NAME_MAX
from .endpoints import display_url as display_url
from .endpoints import endpoint_service as endpoint_service
from .log import Backlog as Backlog
from .log import delivery_log as delivery_log
from .unsubscribe import UNSUBSCRIBE_LINK_LIFETIME as UNSUBSCRIBE_LINK_LIFETIME
from .unsubscribe import describe as describe_unsubscribe
from .unsubscribe import unsubscribe as apply_unsubscribe
from .unsubscribe import verify as verify_unsubscribe
from .webhooks import sign as sign_webhook

__all__ = [
    "NAME_MAX",
    "UNSUBSCRIBE_LINK_LIFETIME",
    "Backlog",
    "DigestReport",
    "DispatchSettings",
    "DispatcherThread",
    "apply_unsubscribe",
    "delivery_log",
    "describe_unsubscribe",
    "dispatch_batches",
    "dispatch_due",
    "display_url",
    "endpoint_service",
    "replay_failed_delivery",
    "replay_failed_since",
    "run_digests",
    "sign_webhook",
    "verify_unsubscribe",
]
