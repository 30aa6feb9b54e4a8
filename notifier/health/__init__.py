"""Job health: the failures that never raise (a scheduled run that never started, beat down).

The face of the sub-package. The worker and beat side record what happens
(:func:`sync_entries`, :func:`run_started`, :func:`run_finished`, :func:`beat_ticked`);
a watcher (:func:`watch_tick`, run by every worker's drainer and by ``notifier watch``)
runs the registered checks; the web reads :func:`entry_states` and
:func:`scheduler_state`. Alerts open and resolve through ``open_health_alert`` and
``auto_resolve`` only.
"""

from __future__ import annotations

from .alerting import auto_resolve as auto_resolve
from .alerting import open_alert_for as open_alert_for
from .alerting import open_health_alert as open_health_alert
from .schedule import BEAT as BEAT
from .schedule import DEFAULT_GRACE_FLOOR as DEFAULT_GRACE_FLOOR
from .schedule import DEFAULT_GRACE_FRACTION as DEFAULT_GRACE_FRACTION
from .schedule import EntrySpec as EntrySpec
from .schedule import EntryState as EntryState
from .schedule import SchedulerState as SchedulerState
from .schedule import beat_ticked as beat_ticked
from .schedule import entry_states as entry_states
from .schedule import grace_for as grace_for
from .schedule import missed_fingerprint as missed_fingerprint
from .schedule import run_finished as run_finished
from .schedule import run_started as run_started
from .schedule import scheduler_state as scheduler_state
from .schedule import sync_entries as sync_entries
from .watch import BEAT_FINGERPRINT as BEAT_FINGERPRINT
from .watch import Check as Check
from .watch import check_schedule as check_schedule
from .watch import checks as checks
from .watch import register_check as register_check
from .watch import release_lease as release_lease
from .watch import take_lease as take_lease
from .watch import unregister_check as unregister_check
from .watch import watch_tick as watch_tick

__all__ = [
    "BEAT",
    "BEAT_FINGERPRINT",
    "DEFAULT_GRACE_FLOOR",
    "DEFAULT_GRACE_FRACTION",
    "Check",
    "EntrySpec",
    "EntryState",
    "SchedulerState",
    "auto_resolve",
    "beat_ticked",
    "check_schedule",
    "checks",
    "entry_states",
    "grace_for",
    "missed_fingerprint",
    "open_alert_for",
    "open_health_alert",
    "register_check",
    "release_lease",
    "run_finished",
    "run_started",
    "scheduler_state",
    "sync_entries",
    "take_lease",
    "unregister_check",
    "watch_tick",
]
