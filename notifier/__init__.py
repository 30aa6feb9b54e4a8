"""notifier core: the notification store and its services. Imports neither Flask nor Celery."""

from __future__ import annotations

from .alerts import PlatformAlertService as PlatformAlertService
from .alerts import platform_alert_service as platform_alert_service
from .config import Settings as Settings
from .db import Database as Database
from .enums import AlertType as AlertType
from .enums import NotificationType as NotificationType
from .enums import Priority as Priority
from .enums import Severity as Severity
from .errors import AlreadyResolvedError as AlreadyResolvedError
from .errors import ConfigurationError as ConfigurationError
from .errors import NotifierError as NotifierError
from .errors import ValidationError as ValidationError
from .models import AdminNotification as AdminNotification
from .models import AdminSession as AdminSession
from .models import AdminUser as AdminUser
from .models import ApiToken as ApiToken
from .models import PlatformAlert as PlatformAlert
from .notifications import AdminNotificationService as AdminNotificationService
from .notifications import admin_notification_service as admin_notification_service

__all__ = [
    "AdminNotification",
    "AdminNotificationService",
    "AdminSession",
    "AdminUser",
    "AlertType",
    "AlreadyResolvedError",
    "ApiToken",
    "ConfigurationError",
    "Database",
    "NotificationType",
    "NotifierError",
    "PlatformAlert",
    "PlatformAlertService",
    "Priority",
    "Settings",
    "Severity",
    "ValidationError",
    "admin_notification_service",
    "platform_alert_service",
]
