"""Schemas of the delivery API: endpoints (channels), deliveries, attempts and replays.

Inputs run the core's rules (``notifier/validation.py``; the URL's scheme and address rules
are the engine's, ``notifier.delivery.egress``, applied by the endpoint service). Outputs
never carry a signing secret, except the one answer that creates or rotates it, never a
PagerDuty routing key, and never a Slack, Teams or Apprise URL (``display_url``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from notifier import (
    AlertType,
    DeliveryChannel,
    DeliveryEvent,
    DeliveryStatus,
    NotificationType,
    Priority,
    Severity,
)
from notifier.delivery import NAME_MAX
from notifier.models import Delivery
from notifier.validation import (
    ACTION_URL_MAX,
    ENDPOINT_URL_PATTERN,
    LIST_MAX_ITEMS,
    PAGE_MAX,
    SKIP_MAX,
)

from .schemas import (
    Input,
    Output,
    OwnerName,
    Page,
    Query,
    StoreId,
    Timestamp,
    text_field,
    text_validator,
)

#: What an admin may create; email goes to the admins through the one built-in endpoint.
CreatableChannel = Literal["webhook", "slack", "teams", "pagerduty", "apprise"]
assert set(get_args(CreatableChannel)) == {c.value for c in DeliveryChannel} - {"email"}

EndpointName = Annotated[str, text_field(NAME_MAX), AfterValidator(text_validator(NAME_MAX))]
_URL_RULES = (
    "Webhook, Slack, Teams, PagerDuty: https only, to a public address (plain http and "
    "private addresses only when NOTIFIER_DELIVERY_ALLOW_PRIVATE is set, for local "
    "development and tests), matching " + ENDPOINT_URL_PATTERN + ". PagerDuty: optional, "
    "its Events API v2 by default. Apprise: one Apprise URL (e.g. ntfys://, tgram://, "
    "discord://); one naming a host of yours is held to the same address rules."
)
EndpointUrl = Annotated[
    str,
    Field(min_length=1, max_length=ACTION_URL_MAX, description=_URL_RULES),
    AfterValidator(text_validator(ACTION_URL_MAX)),
]
RoutingKey = Annotated[
    str,
    Field(
        min_length=32,
        max_length=32,
        pattern="^[A-Za-z0-9]{32}$",
        description="PagerDuty only: the integration's routing key (a secret, never shown back).",
    ),
]
_Many = Field(max_length=LIST_MAX_ITEMS)
EventTypes = Annotated[list[DeliveryEvent], _Many]
NotificationTypes = Annotated[list[NotificationType], _Many]
AlertTypes = Annotated[list[AlertType], _Many]
StoreIds = Annotated[list[StoreId], _Many]
#: Only alerts (and notifications) of these owners; empty: any.
Owners = Annotated[list[OwnerName], _Many]


def _utc(value: datetime) -> datetime:
    # "0001-01-01T00:00+01:00" is before the earliest datetime in UTC: it means "always".
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


Since = Annotated[AwareDatetime, AfterValidator(_utc)]

# -- requests ----------------------------------------------------------------------------


class EndpointCreate(Input):
    """Body of POST /endpoints. An empty filter list means "any"."""

    name: EndpointName
    channel: CreatableChannel
    url: EndpointUrl | None = None
    routing_key: RoutingKey | None = None
    event_types: EventTypes = Field(default_factory=list)
    notification_types: NotificationTypes = Field(default_factory=list)
    alert_types: AlertTypes = Field(default_factory=list)
    store_ids: StoreIds = Field(default_factory=list)
    min_priority: Priority | None = None
    min_severity: Severity | None = None
    owners: Owners = Field(default_factory=list)


class EndpointUpdate(Input):
    """Body of PATCH /endpoints/{id}: only the fields sent change (null clears a minimum)."""

    name: EndpointName | SkipJsonSchema[None] = None
    url: EndpointUrl | SkipJsonSchema[None] = None
    routing_key: RoutingKey | SkipJsonSchema[None] = None
    event_types: EventTypes | SkipJsonSchema[None] = None
    notification_types: NotificationTypes | SkipJsonSchema[None] = None
    alert_types: AlertTypes | SkipJsonSchema[None] = None
    store_ids: StoreIds | SkipJsonSchema[None] = None
    min_priority: Priority | None = None
    min_severity: Severity | None = None
    owners: Owners | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _no_null_where_none_is_meant(self) -> EndpointUpdate:
        # Absent means "unchanged"; null would mean nothing for these, so it is refused.
        nullable = {"min_priority", "min_severity"}
        for name in sorted(self.model_fields_set - nullable):
            if getattr(self, name) is None:
                raise ValueError(f"{name} must not be null; leave it out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent, as the endpoint service takes them."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class DeliveryQuery(Query):
    """Filters and paging of GET /deliveries."""

    status: DeliveryStatus | None = None
    endpoint_id: StoreId | None = None
    event_type: DeliveryEvent | None = None
    skip: Annotated[int, Field(ge=0, le=SKIP_MAX)] = 0
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 50


class ReplayFailed(Input):
    """Body of POST /deliveries/replay-failed."""

    since: Since = Field(description="Replay failed deliveries created at or after this time.")
    endpoint_id: StoreId | None = Field(default=None, description="Only this endpoint's.")


# -- responses ---------------------------------------------------------------------------


class EndpointOut(BaseModel):
    """A delivery endpoint with its health; its secret and credential URL never show."""

    id: int
    name: str
    channel: DeliveryChannel
    display_url: str = Field(description="Scheme and host; a Slack/Teams URL's path is masked.")
    has_secret: bool
    secret_rotation_ends_at: Timestamp | None = Field(
        description="Until then the previous secret signs too (after a rotation)."
    )
    event_types: list[DeliveryEvent]
    notification_types: list[NotificationType]
    alert_types: list[AlertType]
    store_ids: list[int]
    min_priority: Priority | None
    min_severity: Severity | None
    owners: list[str]
    is_enabled: bool
    disabled_reason: str | None
    failing_since: Timestamp | None
    last_success_at: Timestamp | None
    created_at: Timestamp
    pending_deliveries: int
    failed_deliveries: int


class EndpointSecretOut(EndpointOut):
    """The endpoint and its signing secret: shown in this answer only (null for Slack/Teams)."""

    secret: str | None


class EndpointListOut(BaseModel):
    """Every endpoint, oldest first."""

    items: list[EndpointOut]


class DeliveryOut(Output):
    """One event for one endpoint (or one admin's mailbox) and where it stands."""

    id: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event_id: str
    event_type: DeliveryEvent
    channel: DeliveryChannel
    endpoint_id: int | None
    recipient_user_id: int | None
    notification_id: int | None
    alert_id: int | None
    status: DeliveryStatus
    attempt_count: int
    occurred_at: Timestamp
    next_attempt_at: Timestamp | None = Field(description="Set while the delivery is pending.")
    last_error: str | None
    created_at: Timestamp
    finished_at: Timestamp | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        """The delivery as the API shows it."""
        out = cls.model_validate(delivery)
        if delivery.status is not DeliveryStatus.PENDING:
            out.next_attempt_at = None  # the column keeps its last value; it means nothing now
        return out


class AttemptOut(Output):
    """One try at sending: when, how long, and what came back (at most 1 KiB of body)."""

    id: int
    attempted_at: Timestamp
    duration_ms: int
    outcome: str
    error_class: str | None
    error: str | None
    response_status: int | None
    response_body: str | None


class DeliveryDetailOut(DeliveryOut):
    """A delivery with the object it carries and every attempt, oldest first."""

    payload: dict[str, Any]
    attempts: list[AttemptOut]


class DeliveryPage(Page[DeliveryOut]):
    """A page of deliveries."""


class ReplayedOut(BaseModel):
    """How many failed deliveries were queued again."""

    replayed: int


class TestQueuedOut(BaseModel):
    """The test deliveries queued for an endpoint (one per admin for email)."""

    queued: int
    deliveries: list[DeliveryOut]
