"""The notifier's own jobs: deliveries, digests, reminders and retention.

A host adds ``notifier.worker.jobs`` to its app's ``imports`` and gets these four tasks and
nothing else; the demo's failing jobs live in ``notifier.worker.demo``.
"""

from __future__ import annotations

from .delivery import dispatch_deliveries as dispatch_deliveries
from .digests import send_digests as send_digests
from .reminders import send_alert_reminders as send_alert_reminders
from .retention import prune_old as prune_old

__all__ = ["dispatch_deliveries", "prune_old", "send_alert_reminders", "send_digests"]
