"""Job health: the failures that never raise, and root causes that hold back symptoms.

The worker and beat side record what happens (:func:`sync_entries`, :func:`run_started`,
:func:`run_finished`, :func:`beat_ticked`, :func:`record_heartbeat`); a watcher
(:func:`watch_tick`, run by every worker's drainer and by ``notifier watch``) runs the
registered checks (:func:`check_schedule`, :func:`check_hung_runs`, :func:`check_queues`);
the web reads :func:`entry_states`, :func:`scheduler_state`, :func:`overdue_runs` and
:func:`queue_reports`. ``durations``: the run durations workers observed, per task, shared
for the p99 run limit (:func:`record_durations`, :func:`shared_p99s`). ``inhibition``: a
root-cause alert (``explains=<scope>``) holds back the alerts and notifications recorded
inside :func:`symptom_of` one of its scopes.
``recovery``: an alert with a ``recovery_task`` resolves itself when that task next
succeeds. ``broker``: the workers' health loops report a broker they cannot reach
(:func:`broker_unreachable`, :func:`broker_reachable`), a root cause of ``broker:<tag>``.
"""

from __future__ import annotations

from ..outbox import symptom_of as symptom_of
from .alerting import FinishedRun as FinishedRun
from .alerting import open_alert_for as open_alert_for
from .alerting import open_health_alert as open_health_alert
from .broker import BROKER_FINGERPRINT as BROKER_FINGERPRINT
from .broker import broker_reachable as broker_reachable
from .broker import broker_scope as broker_scope
from .broker import broker_unreachable as broker_unreachable
from .durations import p99 as p99
from .durations import record_durations as record_durations
from .durations import shared_p99s as shared_p99s
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
from .queues import queue_scope as queue_scope
from .recovery import RECOVERED as RECOVERED
from .recovery import RECOVERY_RUN_KEY as RECOVERY_RUN_KEY
from .recovery import Watched as Watched
from .recovery import record_runs as record_runs
from .recovery import resolve_by_run as resolve_by_run
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
    "BROKER_FINGERPRINT",
    "DEFAULT_GRACE_FLOOR",
    "DEFAULT_GRACE_FRACTION",
    "DEFAULT_MAX_AGE",
    "INHIBIT_WAIT_ENV",
    "NO_CONSUMER_FINGERPRINT",
    "RECOVERED",
    "RECOVERY_RUN_KEY",
    "RUN_FINGERPRINT",
    "STALE_FINGERPRINT",
    "Check",
    "CheckOutcome",
    "EntrySpec",
    "EntryState",
    "FinishedRun",
    "OverdueRun",
    "QueueObservation",
    "QueueReport",
    "SchedulerState",
    "Watched",
    "beat_ticked",
    "broker_reachable",
    "broker_scope",
    "broker_unreachable",
    "check_hung_runs",
    "check_queues",
    "check_schedule",
    "checks",
    "consumers_by_queue",
    "entry_states",
    "forget_worker",
    "grace_for",
    "held_back_counts",
    "inhibit_wait",
    "missed_fingerprint",
    "open_alert_for",
    "open_health_alert",
    "open_root_cause",
    "overdue_runs",
    "p99",
    "queue_reports",
    "queue_scope",
    "record_durations",
    "record_heartbeat",
    "record_runs",
    "register_check",
    "release_lease",
    "resolve_by_run",
    "resolve_recovered",
    "root_cause_titles",
    "run_finished",
    "run_started",
    "scheduler_state",
    "shared_p99s",
    "span",
    "symptom_of",
    "sync_entries",
    "take_lease",
    "unregister_check",
    "watch_tick",
    "watched",
]
