"""Job health: root causes that hold back their symptoms, and alerts that resolve on recovery.

``inhibition``: a root-cause alert (``explains=<scope>``) holds back the alerts and
notifications recorded inside :func:`symptom_of` one of its scopes. ``recovery``: an alert
with a ``recovery_task`` resolves itself when that task next succeeds.
"""

from __future__ import annotations

from ..outbox import symptom_of as symptom_of
from .inhibition import INHIBIT_WAIT_ENV as INHIBIT_WAIT_ENV
from .inhibition import held_back_counts as held_back_counts
from .inhibition import inhibit_wait as inhibit_wait
from .inhibition import open_root_cause as open_root_cause
from .inhibition import root_cause_titles as root_cause_titles
from .recovery import RECOVERED as RECOVERED
from .recovery import Watched as Watched
from .recovery import record_runs as record_runs
from .recovery import resolve_recovered as resolve_recovered
from .recovery import watched as watched

__all__ = [
    "INHIBIT_WAIT_ENV",
    "RECOVERED",
    "Watched",
    "held_back_counts",
    "inhibit_wait",
    "open_root_cause",
    "record_runs",
    "resolve_recovered",
    "root_cause_titles",
    "symptom_of",
    "watched",
]
