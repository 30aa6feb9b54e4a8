"""Job health: the failures that never raise, and root causes that hold back symptoms.

Each check is a plain function taking a session first; a watcher calls them every tick:
``runs`` (jobs past their limit), ``queues`` (queues nobody consumes). ``inhibition``: a
root-cause alert (``explains=<scope>``) holds back the alerts and notifications recorded
inside :func:`symptom_of` one of its scopes. ``recovery``: an alert with a
``recovery_task`` resolves itself when that task next succeeds.
"""

from __future__ import annotations

from ..outbox import symptom_of as symptom_of
from .inhibition import INHIBIT_WAIT_ENV as INHIBIT_WAIT_ENV
from .inhibition import held_back_counts as held_back_counts
from .inhibition import inhibit_wait as inhibit_wait
from .inhibition import open_root_cause as open_root_cause
from .inhibition import root_cause_titles as root_cause_titles
from .queues import DEFAULT_MAX_AGE as DEFAULT_MAX_AGE
from .queues import NO_CONSUMER_FINGERPRINT as NO_CONSUMER_FINGERPRINT
from .queues import STALE_FINGERPRINT as STALE_FINGERPRINT
from .queues import QueueObservation as QueueObservation
from .queues import QueueReport as QueueReport
from .queues import check_queues as check_queues
from .queues import consumers_by_queue as consumers_by_queue
from .queues import queue_reports as queue_reports
from .recovery import RECOVERED as RECOVERED
from .recovery import Watched as Watched
from .recovery import record_runs as record_runs
from .recovery import resolve_recovered as resolve_recovered
from .recovery import watched as watched
from .runs import RUN_FINGERPRINT as RUN_FINGERPRINT
from .runs import CheckOutcome as CheckOutcome
from .runs import OverdueRun as OverdueRun
from .runs import check_hung_runs as check_hung_runs
from .runs import forget_worker as forget_worker
from .runs import overdue_runs as overdue_runs
from .runs import record_heartbeat as record_heartbeat
from .runs import span as span

__all__ = [
    "DEFAULT_MAX_AGE",
    "INHIBIT_WAIT_ENV",
    "NO_CONSUMER_FINGERPRINT",
    "RECOVERED",
    "RUN_FINGERPRINT",
    "STALE_FINGERPRINT",
    "CheckOutcome",
    "OverdueRun",
    "QueueObservation",
    "QueueReport",
    "Watched",
    "check_hung_runs",
    "check_queues",
    "consumers_by_queue",
    "forget_worker",
    "held_back_counts",
    "inhibit_wait",
    "open_root_cause",
    "overdue_runs",
    "queue_reports",
    "record_heartbeat",
    "record_runs",
    "resolve_recovered",
    "root_cause_titles",
    "span",
    "symptom_of",
    "watched",
]
