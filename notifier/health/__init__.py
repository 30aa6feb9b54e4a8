"""Job health: the failures that never raise (hung runs, queues nobody consumes).

Each check is a plain function taking a session first; a watcher calls them every tick.
"""

from __future__ import annotations

from .queues import DEFAULT_MAX_AGE as DEFAULT_MAX_AGE
from .queues import NO_CONSUMER_FINGERPRINT as NO_CONSUMER_FINGERPRINT
from .queues import STALE_FINGERPRINT as STALE_FINGERPRINT
from .queues import QueueObservation as QueueObservation
from .queues import QueueReport as QueueReport
from .queues import check_queues as check_queues
from .queues import consumers_by_queue as consumers_by_queue
from .queues import queue_reports as queue_reports
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
    "NO_CONSUMER_FINGERPRINT",
    "RUN_FINGERPRINT",
    "STALE_FINGERPRINT",
    "CheckOutcome",
    "OverdueRun",
    "QueueObservation",
    "QueueReport",
    "check_hung_runs",
    "check_queues",
    "consumers_by_queue",
    "forget_worker",
    "overdue_runs",
    "queue_reports",
    "record_heartbeat",
    "span",
]
