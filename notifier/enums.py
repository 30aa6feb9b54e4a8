"""The closed vocabularies of the store: notification types, priorities, alert types, severities."""

from __future__ import annotations

from enum import StrEnum


class NotificationType(StrEnum):
    """What a notification is about."""

    IMPORT_FAILURE = "import_failure"
    ORDER_SYNC_FAILURE = "order_sync_failure"
    ORDER_EXCEPTION = "order_exception"
    CRITICAL_ERROR = "critical_error"
    STORE_ISSUE = "store_issue"
    SECURITY_ALERT = "security_alert"
    SYSTEM_INFO = "system_info"


class Priority(StrEnum):
    """How urgently an admin should look at a notification (badge colour)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class AlertType(StrEnum):
    """Which part of the platform a platform alert concerns."""

    SECURITY = "security"
    PERFORMANCE = "performance"
    CAPACITY = "capacity"
    INTEGRATION = "integration"
    DATABASE = "database"
    SYSTEM = "system"


class Severity(StrEnum):
    """How bad a platform alert is; ordered from least to most severe."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the info < warning < error < critical order."""
        return list(Severity).index(self)


class DeliveryChannel(StrEnum):
    """How a delivery leaves: a signed webhook, chat, an email to an admin, PagerDuty, Apprise."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    TEAMS = "teams"
    EMAIL = "email"
    #: PagerDuty Events API v2: alerts trigger, acknowledge and resolve incidents.
    PAGERDUTY = "pagerduty"
    #: One Apprise URL (ntfy, Telegram, Discord, Pushover, ...); needs the `apprise` extra.
    APPRISE = "apprise"


class DeliveryEvent(StrEnum):
    """What happened, as a webhook's ``type`` names it."""

    NOTIFICATION_CREATED = "notification.created"
    ALERT_OPENED = "alert.opened"
    ALERT_REGRESSED = "alert.regressed"
    ALERT_RESOLVED = "alert.resolved"
    #: An occurrence raised an open alert's severity (it lifts a snooze and an acknowledgment).
    ALERT_ESCALATED = "alert.escalated"
    #: An open critical alert nobody acknowledged, emailed again in its thread.
    ALERT_REMINDER = "alert.reminder"
    #: An admin acknowledged an open alert (PagerDuty and webhooks take it; chat and email not).
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ENDPOINT_TEST = "endpoint.test"


class DeliveryStatus(StrEnum):
    """Where a delivery is: waiting for its next attempt, delivered, or given up on."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DigestFrequency(StrEnum):
    """How often an admin's digest email comes: never, every hour, or once a day."""

    OFF = "off"
    HOURLY = "hourly"
    DAILY = "daily"


class JobKind(StrEnum):
    """What the failed job was: it decides the notification (see README's decorators)."""

    IMPORT = "import"
    SYNC = "sync"
    GENERIC = "generic"


class FailureKind(StrEnum):
    """How the job failed."""

    EXCEPTION = "exception"
    WORKER_LOST = "worker_lost"
    TIME_LIMIT = "time_limit"
    ROW_ERRORS = "row_errors"
    ORDER_EXCEPTION = "order_exception"
