"""The tables: admins and their sessions, notifications, and deduplicated platform alerts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .enums import (
    AlertType,
    DeliveryChannel,
    DeliveryEvent,
    DeliveryStatus,
    DigestFrequency,
    NotificationType,
    Priority,
    Severity,
)
from .types import JSONType, UTCDateTime, utcnow
from .validation import (
    ACTION_URL_MAX,
    FINGERPRINT_MAX,
    MESSAGE_MAX,
    OWNER_MAX,
    TIME_ZONE_MAX,
    TITLE_MAX,
)

# Stable constraint names, so migrations can refer to them on every backend.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base holding the notifier's metadata."""

    metadata = MetaData(naming_convention=_NAMING)


def _str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A VARCHAR holding the enum's values, with a CHECK constraint listing them."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda cls: [member.value for member in cls],
    )


class AdminUser(Base):
    """An administrator who can log in and read notifications."""

    __tablename__ = "notifier_admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The host app's stable id of the user this admin stands for (host login), else None.
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)

    __table_args__ = (
        Index("uq_notifier_admin_users_email_lower", func.lower(email), unique=True),
        Index("uq_notifier_admin_users_external_id", external_id, unique=True),
    )

    def __repr__(self) -> str:
        return f"<AdminUser {self.id} {self.email!r}>"


class AdminNotification(Base):
    """One message to the admins, read by whoever reads it first."""

    __tablename__ = "notifier_admin_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[NotificationType] = mapped_column(_str_enum(NotificationType, "notification_type"))
    priority: Mapped[Priority] = mapped_column(
        _str_enum(Priority, "priority"), default=Priority.NORMAL
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    message: Mapped[str] = mapped_column(Text)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="SET NULL")
    )
    action_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    action_url: Mapped[str | None] = mapped_column(String(ACTION_URL_MAX))
    notification_metadata: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    store_id: Mapped[int | None] = mapped_column(Integer)
    dedup_key: Mapped[str | None] = mapped_column(String(FINGERPRINT_MAX), unique=True)
    #: The fingerprint of the platform alert this notification was raised for, if any: the
    #: failure recorder's cooldown looks for a recent notification of the same fingerprint.
    alert_fingerprint: Mapped[str | None] = mapped_column(String(FINGERPRINT_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The root-cause alert that held this notification back (shown, never delivered).
    held_back_by_id: Mapped[int | None] = mapped_column(Integer, index=True)

    __table_args__ = (
        CheckConstraint(f"length(title) <= {TITLE_MAX}", name="title_length"),
        CheckConstraint(f"length(message) <= {MESSAGE_MAX}", name="message_length"),
        Index(
            "ix_notifier_admin_notifications_fingerprint_created", "alert_fingerprint", "created_at"
        ),
        # Unread count and the header dropdown (newest unread) read only this small index.
        Index(
            "ix_notifier_admin_notifications_unread_created",
            "created_at",
            "id",
            postgresql_where=text("NOT is_read"),
            sqlite_where=text("is_read = 0"),
        ),
        Index("ix_notifier_admin_notifications_created", "created_at", "id"),
        Index("ix_notifier_admin_notifications_priority_created", "priority", "created_at"),
        # Filtered totals count every match; one-column indexes on these few-valued columns
        # are deduplicated by PostgreSQL into a fraction of the size, so counts read less.
        Index("ix_notifier_admin_notifications_priority", "priority"),
        Index("ix_notifier_admin_notifications_type", "type"),
        Index("ix_notifier_admin_notifications_type_created", "type", "created_at"),
        Index("ix_notifier_admin_notifications_read_created", "is_read", "created_at"),
        Index("ix_notifier_admin_notifications_store_created", "store_id", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<AdminNotification {self.id} {self.type} {self.title!r}>"


class PlatformAlert(Base):
    """A platform-wide problem, counted once per fingerprint until someone resolves it."""

    __tablename__ = "notifier_platform_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_type: Mapped[AlertType] = mapped_column(_str_enum(AlertType, "alert_type"))
    severity: Mapped[Severity] = mapped_column(_str_enum(Severity, "severity"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str | None] = mapped_column(Text)
    affected_stores: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    affected_systems: Mapped[list[str]] = mapped_column(JSONType, default=list)
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_MAX))
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    first_occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    is_resolved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="SET NULL")
    )
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    alert_metadata: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Someone took it on: reminders stop until it is unacknowledged or its severity rises.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="SET NULL")
    )
    #: Out of the active count and lists, and silent, until then (compared at query time).
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When an occurrence last raised the severity (the upsert sets it; reminders count from it).
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Where the acknowledgment came from: email, slack, teams (a message's link) or web.
    acknowledged_via: Mapped[str | None] = mapped_column(String(16))
    #: Who answers for it (``owner=`` on the decorator or ``notifier_owners``), and how.
    owner: Mapped[str | None] = mapped_column(String(OWNER_MAX))
    runbook: Mapped[str | None] = mapped_column(String(ACTION_URL_MAX))
    #: The escalation step that fired last (1-based) and when; cleared when severity rises.
    escalation_step: Mapped[int | None] = mapped_column(Integer)
    escalation_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A root cause: the scope of the symptoms it holds back while open ("scheduler",
    #: "queue:<name>", "database:<tag>", "broker:<tag>"); see notifier.health.inhibition.
    explains: Mapped[str | None] = mapped_column(String(FINGERPRINT_MAX))
    #: The root-cause alert that held this one back (recorded and shown, never delivered).
    held_back_by_id: Mapped[int | None] = mapped_column(Integer, index=True)
    #: A root cause: how many alerts and notifications it held back.
    held_back_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: The task whose next success resolves this alert (with its store, if it has one).
    recovery_task: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(f"length(title) <= {TITLE_MAX}", name="title_length"),
        CheckConstraint("occurrence_count >= 1", name="occurrence_count_positive"),
        # The open root causes (few), read whenever a symptom is recorded.
        Index(
            "ix_notifier_platform_alerts_open_explains",
            "explains",
            postgresql_where=text("explains IS NOT NULL AND NOT is_resolved"),
            sqlite_where=text("explains IS NOT NULL AND is_resolved = 0"),
        ),
        # The open alerts a success can resolve (few), read by every worker every few seconds.
        Index(
            "ix_notifier_platform_alerts_open_recovery",
            "recovery_task",
            postgresql_where=text("recovery_task IS NOT NULL AND NOT is_resolved"),
            sqlite_where=text("recovery_task IS NOT NULL AND is_resolved = 0"),
        ),
        # At most one open alert per fingerprint; the upsert's ON CONFLICT targets this index.
        Index(
            "uq_notifier_platform_alerts_open_fingerprint",
            "fingerprint",
            unique=True,
            postgresql_where=text("NOT is_resolved"),
            sqlite_where=text("is_resolved = 0"),
        ),
        Index("ix_notifier_platform_alerts_resolved_last", "is_resolved", "last_occurred_at"),
        # The statistics' one pass (and the severity filter): see get_statistics. On
        # PostgreSQL it carries the lifecycle columns that pass reads (index-only).
        Index(
            "ix_notifier_platform_alerts_counts",
            "is_resolved",
            "severity",
            "alert_type",
            postgresql_include=["snoozed_until", "acknowledged_at"],
        ),
        Index("ix_notifier_platform_alerts_resolved_type", "is_resolved", "alert_type"),
        # The alerts snoozed now, counted by the alert list's total (see page_alerts): a
        # snooze is rare, so this index holds few entries. (The condition is the one the
        # query spells out: a planner proves a partial index from the query's own terms.)
        Index(
            "ix_notifier_platform_alerts_snoozed",
            "snoozed_until",
            "is_resolved",
            postgresql_where=text("snoozed_until IS NOT NULL"),
            sqlite_where=text("snoozed_until IS NOT NULL"),
        ),
        Index("ix_notifier_platform_alerts_resolved_at", "resolved_at"),
        Index("ix_notifier_platform_alerts_fingerprint", "fingerprint"),
        Index("ix_notifier_platform_alerts_owner", "owner"),
    )

    def __repr__(self) -> str:
        return f"<PlatformAlert {self.id} {self.fingerprint!r} x{self.occurrence_count}>"


# The alert list's order (open first, then the latest occurrence, newest id first), as one
# index PostgreSQL can read in order: without it, a page of 100,000 alerts sorts them all.
Index(
    "ix_notifier_platform_alerts_list_order",
    PlatformAlert.is_resolved,
    PlatformAlert.last_occurred_at.desc(),
    PlatformAlert.id.desc(),
)


class AlertReminder(Base):
    """A reminder claimed for one alert and one interval: the key makes it one per interval.

    Inserted (``ON CONFLICT DO NOTHING``) in the transaction that queues the reminder's
    emails, so two beats, or one beat ticking twice, queue them once.
    """

    __tablename__ = "notifier_alert_reminders"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("notifier_platform_alerts.id", ondelete="CASCADE"), primary_key=True
    )
    #: The start of the interval this reminder is for.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<AlertReminder alert={self.alert_id} due {self.due_at}>"


class ProcessedFailure(Base):
    """The key of a failure report already recorded, kept so a replay is recognised.

    Written in the same transaction as the report's effects (alert count, notification), so
    a report redelivered or replayed after a crash is counted exactly once, whatever the
    cooldown. Rows older than the retention window are pruned in bounded batches.
    """

    __tablename__ = "notifier_processed_failures"

    key: Mapped[str] = mapped_column(String(FINGERPRINT_MAX), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<ProcessedFailure {self.key!r}>"


class ApiToken(Base):
    """A bearer token for API clients; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "notifier_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix!r} user={self.user_id}>"


class DeliveryEndpoint(Base):
    """Somewhere events are sent: a webhook, Slack or Teams URL, with a filter."""

    __tablename__ = "notifier_delivery_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[DeliveryChannel] = mapped_column(_str_enum(DeliveryChannel, "channel"))
    # Slack and Teams URLs carry their own credential, so the URL is a secret too.
    url: Mapped[str] = mapped_column(String(ACTION_URL_MAX))
    secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The filter; an empty list means "any".
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    notification_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    alert_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    store_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    min_priority: Mapped[Priority | None] = mapped_column(_str_enum(Priority, "min_priority"))
    min_severity: Mapped[Severity | None] = mapped_column(_str_enum(Severity, "min_severity"))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Only alerts (and notifications) of these owners; empty: any owner or none.
    owners: Mapped[list[str]] = mapped_column(JSONType, default=list)

    def __repr__(self) -> str:
        return f"<DeliveryEndpoint {self.id} {self.channel} {self.name!r}>"


class Delivery(Base):
    """One event for one endpoint or one admin's mailbox: the outbox row."""

    __tablename__ = "notifier_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Standard Webhooks ``webhook-id``: the same on every attempt, so receivers dedup.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[DeliveryEvent] = mapped_column(_str_enum(DeliveryEvent, "event_type"))
    channel: Mapped[DeliveryChannel] = mapped_column(_str_enum(DeliveryChannel, "channel"))
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifier_delivery_endpoints.id", ondelete="CASCADE")
    )
    recipient_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="CASCADE")
    )
    notification_id: Mapped[int | None] = mapped_column(Integer)
    alert_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[DeliveryStatus] = mapped_column(
        _str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A dispatcher's claim: until then nobody else sends it; a dead dispatcher's claim lapses.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why an email waits: "quiet" (the admin's quiet hours; folded with the others held at
    #: release) or "digest" (over the hourly cap; goes out in the admin's next digest).
    hold: Mapped[str | None] = mapped_column(String(16))
    #: A symptom's scopes: checked again when sent, and held back if a root cause opened.
    scopes: Mapped[list[str] | None] = mapped_column(JSONType)

    __table_args__ = (
        Index(
            "ix_notifier_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_notifier_deliveries_status_created", "status", "created_at"),
        Index("ix_notifier_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_notifier_deliveries_recipient_created", "recipient_user_id", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<Delivery {self.id} {self.event_type} {self.status}>"


class DeliveryAttempt(Base):
    """One try at sending a delivery, with what came back."""

    __tablename__ = "notifier_delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("notifier_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # succeeded, retry, failed
    error_class: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(String(500))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(String(1024))


class AdminSession(Base):
    """A browser login the server can end: the cookie holds a random id, stored here hashed.

    Deleting the row (logout, "log out everywhere", deactivation, a password change, the
    admin's deletion) ends the session at once; ``expires_at`` is fixed at login, so use
    never extends it. The id in the cookie is random, never the admin's row id, so a
    cookie cannot be mistaken for another admin who later gets the same row id.
    """

    __tablename__ = "notifier_admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="CASCADE"), index=True
    )
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"<AdminSession {self.id} user={self.user_id} until {self.expires_at}>"


class AdminPreferences(Base):
    """One admin's notification preferences; an admin without a row has the defaults.

    ``rules`` maps channel -> category -> {"mode", "min_level"}; only cells that differ from
    the default are stored. ``quiet_windows`` holds {"days", "start", "end"} objects.
    """

    __tablename__ = "notifier_admin_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="CASCADE"), primary_key=True
    )
    rules: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    channels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    time_zone: Mapped[str] = mapped_column(String(TIME_ZONE_MAX), default="UTC")
    quiet_windows: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    digest_frequency: Mapped[DigestFrequency] = mapped_column(
        _str_enum(DigestFrequency, "digest_frequency"), default=DigestFrequency.OFF
    )
    digest_hour: Mapped[int] = mapped_column(Integer, default=8)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("digest_hour >= 0 AND digest_hour <= 23", name="digest_hour_range"),
    )

    def __repr__(self) -> str:
        return f"<AdminPreferences user={self.user_id}>"


class Digest(Base):
    """One admin's digest for one period, claimed (inserted) before it is sent.

    The unique (user_id, period_key) is what makes a second beat tick, or a second beat,
    find the period taken: exactly one digest per admin and period.
    """

    __tablename__ = "notifier_digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("notifier_admin_users.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(32))
    covered_from: Mapped[datetime] = mapped_column(UTCDateTime)
    covered_until: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="claimed")  # sent, empty, failed
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("uq_notifier_digests_user_period", "user_id", "period_key", unique=True),
        Index("ix_notifier_digests_user_until", "user_id", "covered_until"),
    )

    def __repr__(self) -> str:
        return f"<Digest {self.id} user={self.user_id} {self.period_key}>"


class NotifierKey(Base):
    """A secret the notifier made for itself, by name (the unsubscribe links' signing key).

    Kept in the database so every process that shares it agrees on the key.
    """

    __tablename__ = "notifier_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:  # never show the value
        return f"<NotifierKey {self.name!r}>"


class ActionUse(Base):
    """One use of a message's action link: the once-only record, and who acted from where.

    The key is a digest of the link's token: inserting it is the claim, so a link used
    twice at once acts once. Rows older than the links' lifetime are pruned on use.
    """

    __tablename__ = "notifier_action_uses"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("notifier_platform_alerts.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifier_admin_users.id", ondelete="SET NULL")
    )
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_notifier_action_uses_used_at", "used_at"),)

    def __repr__(self) -> str:
        return f"<ActionUse {self.action} alert={self.alert_id} via {self.source}>"


class EscalationPolicy(Base):
    """Who hears of an unacknowledged alert, step by step (see ``notifier.escalation``).

    Chosen per alert by severity, and optionally alert type and owner (the most specific
    enabled policy wins). ``steps`` holds {"after_minutes", "endpoint_ids", "user_ids",
    "episode"} objects; after the last step the sequence runs again ``repeat`` times.
    """

    __tablename__ = "notifier_escalation_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    severity: Mapped[Severity] = mapped_column(_str_enum(Severity, "severity"))
    alert_type: Mapped[AlertType | None] = mapped_column(_str_enum(AlertType, "alert_type"))
    owner: Mapped[str | None] = mapped_column(String(OWNER_MAX))
    steps: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("repeat >= 0", name="repeat_not_negative"),)

    def __repr__(self) -> str:
        return f"<EscalationPolicy {self.id} {self.name!r} {self.severity}>"


class FailedRun(Base):
    """A failed run of a task that opted in to retries: its route and its arguments, encrypted.

    ``payload`` is a Fernet token (``notifier.retry.payloads``) the web never decrypts; None
    when the worker could not keep the arguments, and ``problem`` then says why.
    ``failure_key`` is the report's key, which is also its notification's ``dedup_key``.
    """

    __tablename__ = "notifier_failed_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    failure_key: Mapped[str] = mapped_column(String(FINGERPRINT_MAX), unique=True)
    task_id: Mapped[str] = mapped_column(String(255))
    task_name: Mapped[str] = mapped_column(String(200))
    exchange: Mapped[str] = mapped_column(String(255), default="")
    routing_key: Mapped[str] = mapped_column(String(255), default="")
    payload: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(String(500))
    #: The alert the failure counted on: pruned with it. A grouped alert also reaches the
    #: runs of its family (``storm_fingerprint``) whose own store's alert is still open.
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey(
            "notifier_platform_alerts.id", ondelete="CASCADE", name="fk_notifier_failed_runs_alert"
        )
    )
    storm_fingerprint: Mapped[str | None] = mapped_column(String(FINGERPRINT_MAX))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The latest retry's Celery task id and status (one retry in flight at a time).
    retry_task_id: Mapped[str | None] = mapped_column(String(255))
    retry_status: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_notifier_failed_runs_alert", "alert_id", "occurred_at"),
        Index("ix_notifier_failed_runs_storm_fingerprint", "storm_fingerprint", "occurred_at"),
        Index("ix_notifier_failed_runs_occurred", "occurred_at"),
    )

    def __repr__(self) -> str:  # never show the payload
        return f"<FailedRun {self.id} {self.task_name} {self.task_id}>"


class TaskRetry(Base):
    """One retry an admin asked for: who, when, which run, the new task id and its outcome.

    The audit record of retries; ``status`` goes pending -> sent -> succeeded or failed
    (``unsendable`` when the worker could not send it).
    """

    __tablename__ = "notifier_task_retries"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(255), unique=True)
    failed_run_id: Mapped[int | None] = mapped_column(
        ForeignKey(
            "notifier_failed_runs.id", ondelete="SET NULL", name="fk_notifier_task_retries_run"
        )
    )
    failed_task_id: Mapped[str] = mapped_column(String(255))
    task_name: Mapped[str] = mapped_column(String(200))
    requested_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey(
            "notifier_admin_users.id", ondelete="SET NULL", name="fk_notifier_task_retries_admin"
        )
    )
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index("ix_notifier_task_retries_status", "status"),
        Index("ix_notifier_task_retries_failed_run", "failed_run_id", "requested_at"),
        Index("ix_notifier_task_retries_requested", "requested_at"),
    )

    def __repr__(self) -> str:
        return f"<TaskRetry {self.id} {self.task_name} {self.task_id} {self.status}>"


class WorkerHeartbeat(Base):
    """One worker's latest report: the queues it consumes and its runs past their limit.

    Written every few seconds by the worker's main process; a row whose ``expires_at`` has
    passed belongs to a worker that stopped reporting (stopped, killed, or hung itself).
    """

    __tablename__ = "notifier_worker_heartbeats"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    queues: Mapped[list[str]] = mapped_column(JSONType, default=list)
    overdue_runs: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<WorkerHeartbeat {self.hostname!r}>"


class TaskDurations(Base):
    """The latest observed durations of one task's long runs, shared by every worker.

    Workers add what they saw in their heartbeat transaction; a restarted or a new worker
    reads the p99 back for the limit of its runs (see ``notifier.health.durations``).
    """

    __tablename__ = "notifier_task_durations"

    task_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: Seconds, oldest first, the most recent ``KEEP`` of them.
    durations: Mapped[list[float]] = mapped_column(JSONType, default=list)
    #: Their 99th percentile; None while there are too few to tell.
    p99_seconds: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<TaskDurations {self.task_name!r} p99={self.p99_seconds}>"


class QueueState(Base):
    """What the last check saw of one broker queue: depth, consumers, its head's wait."""

    __tablename__ = "notifier_queue_states"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    consumers: Mapped[int] = mapped_column(Integer, default=0)
    #: A digest of the message at the head, where the broker lets us peek (Redis, SQL).
    head: Mapped[str | None] = mapped_column(String(64))
    #: When the current head was first seen there: a lower bound of its wait.
    head_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<QueueState {self.name!r} depth={self.depth}>"


class ScheduleEntry(Base):
    """One beat entry as the worker or beat side last synced it, with its last run.

    The web app cannot import Celery: what it shows of the schedule (its text, period,
    next due time) is written here by the side that can.
    """

    __tablename__ = "notifier_schedule_entries"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    schedule_text: Mapped[str] = mapped_column(String(200))
    period_seconds: Mapped[float] = mapped_column(Float)
    grace_seconds: Mapped[float] = mapped_column(Float)
    #: When the next run should start; it stays put while no run starts (that is a miss).
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_task_id: Mapped[str | None] = mapped_column(String(64))
    last_state: Mapped[str | None] = mapped_column(String(16))
    #: The due time a miss alert was opened for (one alert per missed slot, not per tick).
    missed_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: False once the entry left the schedule (kept for its history, no longer watched).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The queue its runs are sent to (its options, the app's routes, else the default).
    queue: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<ScheduleEntry {self.name!r} {self.schedule_text!r}>"


class HealthHeartbeat(Base):
    """The last sign of life of something that should tick (``beat``), and how often it should."""

    __tablename__ = "notifier_health_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: How long it may stay silent (its longest interval plus grace) before it counts as down.
    stale_after_seconds: Mapped[float] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"<HealthHeartbeat {self.name!r} {self.seen_at}>"


class HealthLease(Base):
    """A short lease by name, so one watcher among many processes acts at a time."""

    __tablename__ = "notifier_health_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<HealthLease {self.name!r} {self.holder!r}>"
