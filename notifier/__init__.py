"""notifier core: the notification store and its services. Imports neither Flask nor Celery.

This face holds what a host's code calls: the two services, the enums, the settings and
the database, the failure reports, the errors. The sub-domains have faces of their own:
``notifier.delivery`` (outbox, dispatcher, channels), ``notifier.preferences``,
``notifier.live`` (change feed) and ``notifier.accounts`` (admins, sessions, tokens).
"""

from __future__ import annotations

#: The release, in this one place: setuptools reads it for the distribution's version.
__version__ = "0.2.0"
#: What `pip install` calls this package (the bare name "notifier" was taken on PyPI).
__distribution__ = "celery-notifier"

from .alerts import SNOOZE_MAX as SNOOZE_MAX
from .alerts import AlertFields as AlertFields
from .alerts import PlatformAlertService as PlatformAlertService
from .alerts import platform_alert_service as platform_alert_service
from .config import Settings as Settings
from .config import configured_timezone as configured_timezone
from .config import ensure_instance as ensure_instance
from .config import flag as env_flag
from .config import live_redis_url_from_env as live_redis_url_from_env
from .config import parse_age as parse_age
from .config import validate_live_redis_url as validate_live_redis_url
from .db import Database as Database
from .enums import AlertType as AlertType
from .enums import DeliveryChannel as DeliveryChannel
from .enums import DeliveryEvent as DeliveryEvent
from .enums import DeliveryStatus as DeliveryStatus
from .enums import DigestFrequency as DigestFrequency
from .enums import FailureKind as FailureKind
from .enums import JobKind as JobKind
from .enums import NotificationType as NotificationType
from .enums import Priority as Priority
from .enums import Severity as Severity
from .errors import AlreadyResolvedError as AlreadyResolvedError
from .errors import ConfigurationError as ConfigurationError
from .errors import DeliveryRefusedError as DeliveryRefusedError
from .errors import DuplicateAdminError as DuplicateAdminError
from .errors import NotifierError as NotifierError
from .errors import UnsubscribeLinkError as UnsubscribeLinkError
from .errors import ValidationError as ValidationError
from .failures import STORM_STORES as STORM_STORES
from .failures import FailureReport as FailureReport
from .failures import must_wait as must_wait
from .failures import prune_processed as prune_processed
from .failures import record_failures as record_failures
from .health import RECOVERED as RECOVERED
from .health import record_runs as record_runs
from .health import symptom_of as symptom_of
from .health import watched as watched_recoveries
from .keyset import UNREAD_CAP as UNREAD_CAP
from .keyset import CappedCount as CappedCount
from .keyset import Page as KeysetPage
from .keyset import capped_count_query as capped_count_query
from .migrate import schema_missing as schema_missing
from .migrate import schema_problem as schema_problem
from .migrate import upgrade as upgrade
from .notifications import AdminNotificationService as AdminNotificationService
from .notifications import BellFilter as BellFilter
from .notifications import DailyCount as DailyCount
from .notifications import NotificationFields as NotificationFields
from .notifications import admin_notification_service as admin_notification_service
from .outbox import kick_after_commit as kick_after_commit
from .outbox import queued_in as queued_in
from .reminders import DEFAULT_REPEAT_INTERVAL as DEFAULT_REPEAT_INTERVAL
from .reminders import queue_reminders as queue_reminders
from .retention import prune as prune
from .statistics import get_statistics as get_statistics
from .text import MESSAGE_CHARS as MESSAGE_CHARS
from .text import TRACEBACK_CHARS as TRACEBACK_CHARS
from .text import bounded as bounded
from .text import clip as clip
from .text import storable as storable
from .text import storable_text as storable_text
from .text import unprintable as unprintable
from .types import utcnow as utcnow

__all__ = [
    "DEFAULT_REPEAT_INTERVAL",
    "MESSAGE_CHARS",
    "RECOVERED",
    "SNOOZE_MAX",
    "STORM_STORES",
    "TRACEBACK_CHARS",
    "UNREAD_CAP",
    "AdminNotificationService",
    "AlertFields",
    "AlertType",
    "AlreadyResolvedError",
    "BellFilter",
    "CappedCount",
    "ConfigurationError",
    "DailyCount",
    "Database",
    "DeliveryChannel",
    "DeliveryEvent",
    "DeliveryRefusedError",
    "DeliveryStatus",
    "DigestFrequency",
    "DuplicateAdminError",
    "FailureKind",
    "FailureReport",
    "JobKind",
    "KeysetPage",
    "NotificationFields",
    "NotificationType",
    "NotifierError",
    "PlatformAlertService",
    "Priority",
    "Settings",
    "Severity",
    "UnsubscribeLinkError",
    "ValidationError",
    "admin_notification_service",
    "bounded",
    "capped_count_query",
    "clip",
    "configured_timezone",
    "ensure_instance",
    "env_flag",
    "get_statistics",
    "kick_after_commit",
    "live_redis_url_from_env",
    "must_wait",
    "parse_age",
    "platform_alert_service",
    "prune",
    "prune_processed",
    "queue_reminders",
    "queued_in",
    "record_failures",
    "record_runs",
    "schema_missing",
    "schema_problem",
    "storable",
    "storable_text",
    "symptom_of",
    "unprintable",
    "upgrade",
    "utcnow",
    "validate_live_redis_url",
    "watched_recoveries",
]
