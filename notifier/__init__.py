"""notifier core: the notification store and its services. Imports neither Flask nor Celery."""

from __future__ import annotations

from .alerts import AlertFields as AlertFields
from .alerts import PlatformAlertService as PlatformAlertService
from .alerts import platform_alert_service as platform_alert_service
from .changes import Position as Position
from .config import Settings as Settings
from .db import Database as Database
from .dispatch import DispatcherThread as DispatcherThread
from .dispatch import DispatchSettings as DispatchSettings
from .dispatch import dispatch_due as dispatch_due
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
from .errors import ValidationError as ValidationError
from .failures import FailureKind as FailureKind
from .failures import FailureReport as FailureReport
from .failures import JobKind as JobKind
from .failures import must_wait as must_wait
from .failures import prune_processed as prune_processed
from .failures import record_failures as record_failures
from .migrate import schema_problem as schema_problem
from .migrate import upgrade as upgrade
from .models import AdminNotification as AdminNotification
from .models import AdminSession as AdminSession
from .models import AdminUser as AdminUser
from .models import ApiToken as ApiToken
from .models import Delivery as Delivery
from .models import DeliveryAttempt as DeliveryAttempt
from .models import DeliveryEndpoint as DeliveryEndpoint
from .models import PlatformAlert as PlatformAlert
from .models import ProcessedFailure as ProcessedFailure
from .notifications import AdminNotificationService as AdminNotificationService
from .notifications import NotificationFields as NotificationFields
from .notifications import admin_notification_service as admin_notification_service
from .outbox import queued_in as queued_in
from .statistics import get_statistics as get_statistics
from .users import create_admin as create_admin

__all__ = [
    "AdminNotification",
    "AdminNotificationService",
    "AdminSession",
    "AdminUser",
    "AlertFields",
    "AlertType",
    "AlreadyResolvedError",
    "ApiToken",
    "ConfigurationError",
    "Database",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryChannel",
    "DeliveryEndpoint",
    "DeliveryEvent",
    "DeliveryRefusedError",
    "DeliveryStatus",
    "DispatchSettings",
    "DispatcherThread",
    "DuplicateAdminError",
    "FailureKind",
    "FailureReport",
    "JobKind",
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
    "ValidationError",
    "admin_notification_service",
    "create_admin",
    "dispatch_due",
    "endpoint_service",
    "get_statistics",
    "must_wait",
    "platform_alert_service",
    "prune_processed",
    "queued_in",
    "record_failures",
    "schema_problem",
    "upgrade",
]
