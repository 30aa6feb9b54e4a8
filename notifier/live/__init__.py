"""Live updates: the replayable change feed and the notices that wake other processes."""

from __future__ import annotations

from .changes import CHANNEL as CHANGES_CHANNEL
from .changes import Position as Position
from .changes import alert_change as alert_change
from .changes import alerts_by_id as alerts_by_id
from .changes import alerts_changed_after as alerts_changed_after
from .changes import current_position as current_position
from .changes import notifications_after as notifications_after
from .changes import notifications_by_id as notifications_by_id

__all__ = [
    "CHANGES_CHANNEL",
    "Position",
    "alert_change",
    "alerts_by_id",
    "alerts_changed_after",
    "current_position",
    "notifications_after",
    "notifications_by_id",
]
