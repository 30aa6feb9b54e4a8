"""Job health, worker side: the root causes it sees, and successes that resolve alerts."""

from __future__ import annotations

from .inhibition import DatabaseOutage as DatabaseOutage
from .inhibition import connection_scopes as connection_scopes
from .recovery import RecoveryWatch as RecoveryWatch
from .recovery import forget as forget_watch
from .recovery import watch_for as watch_for

__all__ = ["DatabaseOutage", "RecoveryWatch", "connection_scopes", "forget_watch", "watch_for"]
