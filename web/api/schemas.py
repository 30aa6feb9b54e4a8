"""Request and response schemas: validate input, shape output, generate the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from typing_extensions import TypeAliasType

from notifier import AlertType, NotificationType, Priority, Severity
from notifier.validation import (
    ACTION_URL_MAX,
    ENDPOINT_URL_PATTERN,
    FINGERPRINT_MAX,
    INT32_MAX,
    LIST_MAX_ITEMS,
    MESSAGE_MAX,
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    NO_NUL_PATTERN,
    OWNER_MAX,
    PAGE_MAX,
    SAFE_URL_PATTERN,
    SKIP_MAX,
    SYSTEM_NAME_MAX,
    TEXT_PATTERN,
    TITLE_MAX,
    metadata_problem,
    neutralise,
    runbook_problem,
    text_problem,
    url_problem,
)


def validator_of(problem: Callable[[Any], str | None]) -> Callable[[Any], Any]:
    """A pydantic validator running one of the core's checks (notifier/validation.py)."""

    def check(value: Any) -> Any:
        why = problem(value)
        if why:
            raise ValueError(why)
        return value

    return check


def text_validator(max_length: int, *, required: bool = True) -> Callable[[str], str]:
    """A validator running the core's text rule for a field of ``max_length`` characters."""

    def check(value: str) -> str:
        why = text_problem(value, max_length=max_length, required=required)
        if why:
            raise ValueError(why)
        return neutralise(value)

    return check


def integral_value(value: Any) -> Any:
    """An integer given as ``5`` or ``5.0`` as 5; anything else is left for the type check."""
    # JSON Schema counts 5.0 as an integer; accept it as 5 (and nothing else that is not int).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _utc_iso(value: datetime) -> str:
    return value.isoformat()


# The schema says what the core's checks enforce, so generated clients (and schemathesis)
# send what the server accepts: no NUL anywhere (PostgreSQL cannot store it), text with
# something visible in it, links by the one URL rule.


def text_field(max_length: int) -> Any:
    """The schema of a required text field of at most ``max_length`` characters."""
    return Field(min_length=1, max_length=max_length, json_schema_extra={"pattern": TEXT_PATTERN})


Title = Annotated[str, text_field(TITLE_MAX), AfterValidator(text_validator(TITLE_MAX))]
Message = Annotated[str, text_field(MESSAGE_MAX), AfterValidator(text_validator(MESSAGE_MAX))]
OptionalText = Annotated[
    str,
    Field(max_length=MESSAGE_MAX, json_schema_extra={"pattern": NO_NUL_PATTERN}),
    AfterValidator(text_validator(MESSAGE_MAX, required=False)),
]
Key = Annotated[str, text_field(FINGERPRINT_MAX), AfterValidator(text_validator(FINGERPRINT_MAX))]
ActionUrl = Annotated[
    str,
    Field(max_length=ACTION_URL_MAX, json_schema_extra={"pattern": SAFE_URL_PATTERN}),
    AfterValidator(validator_of(url_problem)),
]
_JsonText = Annotated[str, Field(json_schema_extra={"pattern": NO_NUL_PATTERN})]
JsonValue = TypeAliasType(
    "JsonValue",
    "_JsonText | int | float | bool | list[JsonValue] | dict[_JsonText, JsonValue] | None",
)
Metadata = Annotated[
    dict[_JsonText, JsonValue],
    AfterValidator(validator_of(metadata_problem)),
    Field(
        description=(
            f"A JSON object of at most {METADATA_MAX_BYTES} bytes as UTF-8 JSON, "
            f"nested at most {METADATA_MAX_DEPTH} levels deep."
        )
    ),
]
OwnerName = Annotated[str, text_field(OWNER_MAX), AfterValidator(text_validator(OWNER_MAX))]
RunbookUrl = Annotated[
    str,
    Field(
        max_length=ACTION_URL_MAX,
        json_schema_extra={"pattern": ENDPOINT_URL_PATTERN},
        description="An absolute http(s) URL.",
    ),
    AfterValidator(validator_of(runbook_problem)),
]
StoreId = Annotated[int, Field(ge=0, le=INT32_MAX), BeforeValidator(integral_value)]
SystemName = Annotated[
    str, text_field(SYSTEM_NAME_MAX), AfterValidator(text_validator(SYSTEM_NAME_MAX))
]
Timestamp = Annotated[
    datetime,
    PlainSerializer(_utc_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class SchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON Schema, with constrained dict keys as ``propertyNames``.

    Pydantic renders ``dict[ConstrainedStr, V]`` as ``patternProperties``, which in JSON Schema
    lets keys that do not match through unchecked; ``propertyNames`` says what we enforce.
    """

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        """A dict: its value schema, and the key pattern as ``propertyNames``."""
        result = super().dict_schema(schema)
        patterns = result.pop("patternProperties", None)
        if patterns and len(patterns) == 1:
            ((pattern, values),) = patterns.items()
            result["propertyNames"] = {"pattern": pattern}
            result["additionalProperties"] = values
        elif patterns:
            result["patternProperties"] = patterns
        return result


class Input(BaseModel):
    """A request body: unknown fields and wrong types are refused, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query parameters: strings converted to the declared types, unknown names refused.

    A list's query names each field as its service's keyword argument: ``list_arguments``
    passes them through as they are.
    """

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Base of every answer's schema: read from the model's attributes."""

    model_config = ConfigDict(from_attributes=True)


# -- requests ----------------------------------------------------------------------------


class NotificationCreate(Input):
    """Body of POST /notifications."""

    type: NotificationType
    title: Title
    message: Message
    priority: Priority = Priority.NORMAL
    action_required: bool = False
    action_url: ActionUrl | None = None
    notification_metadata: Metadata | None = None
    store_id: StoreId | None = None
    dedup_key: Key | None = None


class AlertCreate(Input):
    """Body of POST /notifications/alerts."""

    alert_type: AlertType
    severity: Severity
    title: Title
    description: OptionalText | None = None
    affected_stores: Annotated[list[StoreId], Field(max_length=LIST_MAX_ITEMS)] | None = None
    affected_systems: Annotated[list[SystemName], Field(max_length=LIST_MAX_ITEMS)] | None = None
    alert_metadata: Metadata | None = None
    fingerprint: Key | None = None
    owner: OwnerName | None = None
    runbook: RunbookUrl | None = None


class AlertResolve(Input):
    """Body of PUT /notifications/alerts/{id}/resolve."""

    resolution_notes: Message


def _date_time_text(value: Any) -> Any:
    # Bodies are strict JSON: a date and time comes as RFC 3339 text, never as a number.
    if not isinstance(value, str):
        raise ValueError("give a date and time with its offset, e.g. 2026-01-31T18:00:00Z")
    return value


class AlertSnooze(Input):
    """Body of PUT /notifications/alerts/{id}/snooze."""

    #: When the alert comes back: in the future and at most 30 days away, with an offset.
    until: Annotated[
        AwareDatetime,
        BeforeValidator(_date_time_text),
        Field(strict=False, description="in the future, at most 30 days away (RFC 3339)"),
    ]


#: A keyset cursor as ``next_cursor`` gave it (URL-safe base64 of the last row's sort key).
Cursor = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


class NotificationQuery(Query):
    """Filters and paging of GET /notifications."""

    priority: Priority | None = None
    type: NotificationType | None = None
    is_read: bool | None = None
    store_id: StoreId | None = None
    skip: Annotated[int, Field(ge=0, le=SKIP_MAX)] = 0
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 50


class AlertQuery(Query):
    """Filters and paging of GET /notifications/alerts."""

    alert_type: AlertType | None = None
    severity: Severity | None = None
    is_resolved: bool | None = None
    #: false (default): leave out alerts snoozed now; true: only those.
    snoozed: bool = False
    acknowledged: bool | None = None
    skip: Annotated[int, Field(ge=0, le=SKIP_MAX)] = 0
    cursor: Cursor | None = None
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 50
    #: Only this owner's alerts.
    owner: OwnerName | None = None


class RecentQuery(Query):
    """Paging of GET /notifications/recent."""

    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 5


# -- responses ---------------------------------------------------------------------------


class NotificationOut(Output):
    """An admin notification, every field under the model's name."""

    id: int
    type: NotificationType
    priority: Priority
    title: str
    message: str
    is_read: bool
    read_at: Timestamp | None
    read_by_user_id: int | None
    action_required: bool
    action_url: str | None
    notification_metadata: dict[str, Any]
    store_id: int | None
    dedup_key: str | None
    alert_fingerprint: str | None
    created_at: Timestamp
    #: The root-cause alert that held it back: recorded and shown, never delivered.
    held_back_by_id: int | None = None


class AlertOut(Output):
    """A platform alert, every field under the model's name."""

    id: int
    alert_type: AlertType
    severity: Severity
    title: str
    description: str | None
    affected_stores: list[int]
    affected_systems: list[str]
    fingerprint: str
    occurrence_count: int
    first_occurred_at: Timestamp
    last_occurred_at: Timestamp
    is_resolved: bool
    resolved_at: Timestamp | None
    resolved_by_user_id: int | None
    resolution_notes: str | None
    alert_metadata: dict[str, Any]
    created_at: Timestamp
    acknowledged_at: Timestamp | None
    acknowledged_by_user_id: int | None
    #: Where the acknowledgment came from: email, slack, teams (a message's link) or web.
    acknowledged_via: str | None
    #: Hidden from the active count and lists until then (a time in the past: back).
    snoozed_until: Timestamp | None
    #: When an occurrence last raised the severity (reminders count from it).
    escalated_at: Timestamp | None
    owner: str | None
    runbook: str | None
    #: The escalation step that fired last (1-based) and when; null before the first.
    escalation_step: int | None
    escalation_step_at: Timestamp | None
    #: A root cause: the scope it explains ("scheduler", "queue:<name>", "database:<tag>",
    #: "broker:<tag>").
    explains: str | None = None
    #: The root-cause alert that held it back: recorded and shown, never delivered.
    held_back_by_id: int | None = None
    #: A root cause: how many alerts and notifications it held back.
    held_back_count: int = 0
    #: The task whose next success resolves it (for its store, if it names stores).
    recovery_task: str | None = None


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    """One page of a filtered list and the total number of matches."""

    items: list[T]
    #: Exact up to 10,000 matches; beyond, 10,000 and ``total_exact`` false ("10,000+").
    total: int
    total_exact: bool
    skip: int
    limit: int
    #: Pass as ``cursor`` for the next page (as fast at any depth); null on the last page.
    next_cursor: str | None


class NotificationPage(Page[NotificationOut]):
    """A page of notifications."""


class AlertPage(Page[AlertOut]):
    """A page of platform alerts."""


class UnreadCountOut(BaseModel):
    """How many notifications nobody has read."""

    #: Exact up to 1,000; beyond, 1,000 and ``unread_count_exact`` false ("1,000+").
    unread_count: int
    unread_count_exact: bool


class RecentOut(UnreadCountOut):
    """The newest unread notifications and the unread count, for the header bell."""

    items: list[NotificationOut]


class MarkedOut(BaseModel):
    """How many notifications a bulk mark-as-read changed."""

    marked: int


class AlertStatsOut(BaseModel):
    """Counts for the statistics cards and the breakdown of active alerts."""

    #: Exact up to 1,000; beyond, 1,000 and ``unread_notifications_exact`` false.
    unread_notifications: int
    unread_notifications_exact: bool
    active_alerts: int
    critical_alerts: int
    snoozed_alerts: int
    acknowledged_alerts: int
    resolved_today: int
    #: Exact up to 10,000; beyond, 10,000 and ``total_alerts_exact`` false.
    total_alerts: int
    total_alerts_exact: bool
    by_severity: dict[str, int]
    by_type: dict[str, int]
    #: Active alerts held back by an open root cause (counted in active_alerts too).
    held_back_alerts: int = 0


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a sentence, and details (each bad field and why)."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    """Every error under /api has this shape."""

    error: ErrorBody
