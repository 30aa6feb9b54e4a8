"""notifier core: the notification store and its services. Imports neither Flask nor Celery."""

from __future__ import annotations

from .alerts import SNOOZE_MAX as SNOOZE_MAX
from .alerts import AlertFields as AlertFields
from .alerts import PlatformAlertService as PlatformAlertService
from .alerts import platform_alert_service as platform_alert_service
from .changes import CHANNEL as CHANGES_CHANNEL
from .changes import Position as Position
from .changes import alert_change as alert_change
from .changes import alerts_by_id as alerts_by_id
from .changes import alerts_changed_after as alerts_changed_after
from .changes import current_position as current_position
from .changes import notifications_after as notifications_after
from .changes import notifications_by_id as notifications_by_id
from .config import Settings as Settings
from .config import configured_timezone as configured_timezone
from .config import ensure_instance as ensure_instance
from .config import flag as env_flag
from .config import live_redis_url_from_env as live_redis_url_from_env
from .config import validate_live_redis_url as validate_live_redis_url
from .db import Database as Database
from .deliveries import Backlog as Backlog
from .deliveries import delivery_log as delivery_log
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
from .enums import AlertType as AlertType
from .enums import DeliveryChannel as DeliveryChannel
from .enums import DeliveryEvent as DeliveryEvent
from .enums import DeliveryStatus as DeliveryStatus
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
from .failures import FailureKind as FailureKind
from .failures import FailureReport as FailureReport
from .failures import JobKind as JobKind
from .failures import must_wait as must_wait
from .failures import prune_processed as prune_processed
from .failures import record_failures as record_failures
from .failures import storable as storable
from .failures import storable_text as storable_text
from .failures import unprintable as unprintable
from .keyset import CappedCount as CappedCount
from .keyset import Page as KeysetPage
from .migrate import schema_missing as schema_missing
from .migrate import schema_problem as schema_problem
from .migrate import upgrade as upgrade
from .models import AdminNotification as AdminNotification
from .models import AdminSession as AdminSession
from .models import AdminUser as AdminUser
from .models import AlertReminder as AlertReminder
from .models import ApiToken as ApiToken
from .models import Delivery as Delivery
from .models import DeliveryAttempt as DeliveryAttempt
from .models import DeliveryEndpoint as DeliveryEndpoint
from .models import PlatformAlert as PlatformAlert
from .models import ProcessedFailure as ProcessedFailure
from .notifications import AdminNotificationService as AdminNotificationService
from .notifications import BellFilter as BellFilter
from .notifications import DailyCount as DailyCount
from .notifications import NotificationFields as NotificationFields
from .notifications import admin_notification_service as admin_notification_service
from .outbox import kick_after_commit as kick_after_commit
from .outbox import queued_in as queued_in
from .preference_store import admin_bell_filter as admin_bell_filter
from .preference_store import category_table as category_table
from .preference_store import preferences_document as preferences_document
from .preference_store import save_preferences as save_preferences
from .reminders import DEFAULT_REPEAT_INTERVAL as DEFAULT_REPEAT_INTERVAL
from .reminders import queue_reminders as queue_reminders
from .retention import parse_age as parse_age
from .retention import prune as prune
from .sessions import SESSION_LIFETIME as SESSION_LIFETIME
from .sessions import end_admin_sessions as end_admin_sessions
from .sessions import end_session as end_session
from .sessions import prune_expired_sessions as prune_expired_sessions
from .sessions import session_admin as session_admin
from .sessions import start_session as start_session
from .statistics import get_statistics as get_statistics
from .tokens import TokenNotFoundError as TokenNotFoundError
from .tokens import create_token as create_token
from .tokens import find_token as find_token
from .tokens import revoke_token as revoke_token
from .tokens import verify_token as verify_token
from .types import utcnow as utcnow
from .unsubscribe import UNSUBSCRIBE_LINK_LIFETIME as UNSUBSCRIBE_LINK_LIFETIME
from .unsubscribe import describe as describe_unsubscribe
from .unsubscribe import unsubscribe as unsubscribe
from .unsubscribe import verify as verify_unsubscribe
from .users import admin_for_host_user as admin_for_host_user
from .users import authenticate as authenticate
from .users import create_admin as create_admin
from .users import find_admin as find_admin
from .users import password_matches as password_matches
from .validation import ACTION_URL_MAX as ACTION_URL_MAX
from .validation import CLOCK_PATTERN as CLOCK_PATTERN
from .validation import ENDPOINT_URL_PATTERN as ENDPOINT_URL_PATTERN
from .validation import FINGERPRINT_MAX as FINGERPRINT_MAX
from .validation import INT32_MAX as INT32_MAX
from .validation import LIST_MAX_ITEMS as LIST_MAX_ITEMS
from .validation import MESSAGE_MAX as MESSAGE_MAX
from .validation import METADATA_MAX_BYTES as METADATA_MAX_BYTES
from .validation import METADATA_MAX_DEPTH as METADATA_MAX_DEPTH
from .validation import NO_NUL_PATTERN as NO_NUL_PATTERN
from .validation import PAGE_MAX as PAGE_MAX
from .validation import QUIET_WINDOWS_MAX as QUIET_WINDOWS_MAX
from .validation import SAFE_URL_PATTERN as SAFE_URL_PATTERN
from .validation import SKIP_MAX as SKIP_MAX
from .validation import SYSTEM_NAME_MAX as SYSTEM_NAME_MAX
from .validation import TEXT_PATTERN as TEXT_PATTERN
from .validation import TIME_ZONE_MAX as TIME_ZONE_MAX
from .validation import TITLE_MAX as TITLE_MAX
from .validation import TOO_DEEP as TOO_DEEP
from .validation import endpoint_url_problem as endpoint_url_problem
from .validation import is_app_path as is_app_path
from .validation import is_safe_url as is_safe_url
from .validation import metadata_problem as metadata_problem
from .validation import neutralise as neutralise
from .validation import text_problem as text_problem
from .validation import time_zone_problem as time_zone_problem
from .validation import time_zones as time_zones
from .validation import url_problem as url_problem
from .webhooks import sign as sign_webhook

__all__ = [
    "ACTION_URL_MAX",
    "CHANGES_CHANNEL",
    "CLOCK_PATTERN",
    "DEFAULT_REPEAT_INTERVAL",
    "ENDPOINT_URL_PATTERN",
    "FINGERPRINT_MAX",
    "INT32_MAX",
    "LIST_MAX_ITEMS",
    "MESSAGE_MAX",
    "METADATA_MAX_BYTES",
    "METADATA_MAX_DEPTH",
    "NAME_MAX",
    "NO_NUL_PATTERN",
    "PAGE_MAX",
    "QUIET_WINDOWS_MAX",
    "SAFE_URL_PATTERN",
    "SESSION_LIFETIME",
    "SKIP_MAX",
    "SNOOZE_MAX",
    "STORM_STORES",
    "SYSTEM_NAME_MAX",
    "TEXT_PATTERN",
    "TIME_ZONE_MAX",
    "TITLE_MAX",
    "TOO_DEEP",
    "UNSUBSCRIBE_LINK_LIFETIME",
    "AdminNotification",
    "AdminNotificationService",
    "AdminSession",
    "AdminUser",
    "AlertFields",
    "AlertReminder",
    "AlertType",
    "AlreadyResolvedError",
    "ApiToken",
    "Backlog",
    "BellFilter",
    "CappedCount",
    "ConfigurationError",
    "DailyCount",
    "Database",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryChannel",
    "DeliveryEndpoint",
    "DeliveryEvent",
    "DeliveryRefusedError",
    "DeliveryStatus",
    "DigestReport",
    "DispatchSettings",
    "DispatcherThread",
    "DuplicateAdminError",
    "FailureKind",
    "FailureReport",
    "JobKind",
    "KeysetPage",
    "NotificationFields",
    "NotificationType",
    "NotifierError",
    "PlatformAlert",
    "PlatformAlertService",
    "Position",
    "Priority",
    "ProcessedFailure",
    "Settings",
    "Severity",
    "TokenNotFoundError",
    "UnsubscribeLinkError",
    "ValidationError",
    "admin_bell_filter",
    "admin_for_host_user",
    "admin_notification_service",
    "alert_change",
    "alerts_by_id",
    "alerts_changed_after",
    "authenticate",
    "category_table",
    "configured_timezone",
    "create_admin",
    "create_token",
    "current_position",
    "delivery_log",
    "describe_unsubscribe",
    "dispatch_batches",
    "dispatch_due",
    "display_url",
    "end_admin_sessions",
    "end_session",
    "endpoint_service",
    "endpoint_url_problem",
    "ensure_instance",
    "env_flag",
    "find_admin",
    "find_token",
    "get_statistics",
    "is_app_path",
    "is_safe_url",
    "kick_after_commit",
    "live_redis_url_from_env",
    "metadata_problem",
    "must_wait",
    "neutralise",
    "notifications_after",
    "notifications_by_id",
    "parse_age",
    "password_matches",
    "platform_alert_service",
    "preferences_document",
    "prune",
    "prune_expired_sessions",
    "prune_processed",
    "queue_reminders",
    "queued_in",
    "record_failures",
    "replay_failed_delivery",
    "replay_failed_since",
    "revoke_token",
    "run_digests",
    "save_preferences",
    "schema_missing",
    "schema_problem",
    "session_admin",
    "sign_webhook",
    "start_session",
    "storable",
    "storable_text",
    "text_problem",
    "time_zone_problem",
    "time_zones",
    "unprintable",
    "unsubscribe",
    "upgrade",
    "url_problem",
    "utcnow",
    "validate_live_redis_url",
    "verify_token",
    "verify_unsubscribe",
]
