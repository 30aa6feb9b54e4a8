"""Request and response schemas: validate input, shape output, generate the OpenAPI document."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
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

from notifier.enums import AlertType, NotificationType, Priority, Severity
from notifier.notifications import MAX_PAGE
from notifier.validation import (
    ACTION_URL_MAX,
    FINGERPRINT_MAX,
    LIST_MAX_ITEMS,
    MESSAGE_MAX,
    METADATA_MAX_BYTES,
    SYSTEM_NAME_MAX,
    TITLE_MAX,
    is_safe_url,
)

#: Largest value an INTEGER column holds on PostgreSQL; ids and store ids stay within it.
INT32_MAX = 2**31 - 1
#: Deepest page reachable with skip; beyond it a client should narrow its filters.
SKIP_MAX = 10_000_000


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# The URLs the API accepts, as a pattern the document can carry: an app path (not "//...")
# or an http(s) URL with a host; no control characters, spaces or backslashes anywhere.
_URL_TAIL = r"[^\u0000-\u0020\u007f\\]"
SAFE_URL_PATTERN = (
    rf"^(?:/|/[^/\u0000-\u0020\u007f\\]{_URL_TAIL}*"
    rf"|https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{{1,5}})?(?:[/?#]{_URL_TAIL}*)?)$"
)
_SAFE_URL = re.compile(SAFE_URL_PATTERN)


def _safe_url(value: str) -> str:
    if not _SAFE_URL.fullmatch(value) or not is_safe_url(value):
        raise ValueError(
            "must be a relative path starting with '/' or an http(s) URL "
            "(no javascript:, data:, protocol-relative '//' or control characters)"
        )
    return value


def _walk_strings(value: Any) -> None:
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            _walk_strings(item)


def _small_object(value: dict[str, Any]) -> dict[str, Any]:
    _walk_strings(value)
    try:
        encoded = json.dumps(value, allow_nan=False)
    except ValueError as exc:
        raise ValueError("must hold only finite numbers") from exc
    if len(encoded.encode()) > METADATA_MAX_BYTES:
        raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes as JSON")
    return value


def _integral(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; accept it as 5 (and nothing else that is not int).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _utc_iso(value: datetime) -> str:
    return value.isoformat()


# The schema says what the validators enforce, so generated clients (and schemathesis) send
# what the server accepts: no NUL anywhere (PostgreSQL cannot store it), text not blank.
_NO_NUL = r"^[^\u0000]*$"
_TEXT = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"


def _text(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length, json_schema_extra={"pattern": _TEXT})


Title = Annotated[str, _text(TITLE_MAX), AfterValidator(_no_nul), AfterValidator(_not_blank)]
Message = Annotated[str, _text(MESSAGE_MAX), AfterValidator(_no_nul), AfterValidator(_not_blank)]
OptionalText = Annotated[
    str,
    Field(max_length=MESSAGE_MAX, json_schema_extra={"pattern": _NO_NUL}),
    AfterValidator(_no_nul),
]
Key = Annotated[str, _text(FINGERPRINT_MAX), AfterValidator(_no_nul), AfterValidator(_not_blank)]
ActionUrl = Annotated[
    str,
    Field(max_length=ACTION_URL_MAX, json_schema_extra={"pattern": SAFE_URL_PATTERN}),
    AfterValidator(_safe_url),
]
_JsonText = Annotated[str, Field(json_schema_extra={"pattern": _NO_NUL}), AfterValidator(_no_nul)]
JsonValue = TypeAliasType(
    "JsonValue",
    "_JsonText | int | float | bool | list[JsonValue] | dict[_JsonText, JsonValue] | None",
)
Metadata = Annotated[
    dict[_JsonText, JsonValue],
    AfterValidator(_small_object),
    Field(description=f"A JSON object of at most {METADATA_MAX_BYTES} bytes."),
]
StoreId = Annotated[int, Field(ge=0, le=INT32_MAX), BeforeValidator(_integral)]
SystemName = Annotated[
    str,
    _text(SYSTEM_NAME_MAX),
    AfterValidator(_no_nul),
    AfterValidator(_not_blank),
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


class _Input(BaseModel):
    """A request body: unknown fields and wrong types are refused, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _Query(BaseModel):
    """Query parameters: strings converted to the declared types, unknown names refused."""

    model_config = ConfigDict(extra="forbid")


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- requests ----------------------------------------------------------------------------


class NotificationCreate(_Input):
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


class AlertCreate(_Input):
    """Body of POST /notifications/alerts."""

    alert_type: AlertType
    severity: Severity
    title: Title
    description: OptionalText | None = None
    affected_stores: Annotated[list[StoreId], Field(max_length=LIST_MAX_ITEMS)] | None = None
    affected_systems: Annotated[list[SystemName], Field(max_length=LIST_MAX_ITEMS)] | None = None
    alert_metadata: Metadata | None = None
    fingerprint: Key | None = None


class AlertResolve(_Input):
    """Body of PUT /notifications/alerts/{id}/resolve."""

    resolution_notes: Message


class NotificationQuery(_Query):
    """Filters and paging of GET /notifications."""

    priority: Priority | None = None
    type: NotificationType | None = None
    is_read: bool | None = None
    store_id: StoreId | None = None
    skip: Annotated[int, Field(ge=0, le=SKIP_MAX)] = 0
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50


class AlertQuery(_Query):
    """Filters and paging of GET /notifications/alerts."""

    alert_type: AlertType | None = None
    severity: Severity | None = None
    is_resolved: bool | None = None
    skip: Annotated[int, Field(ge=0, le=SKIP_MAX)] = 0
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50


class RecentQuery(_Query):
    """Paging of GET /notifications/recent."""

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 5


class NoQuery(_Query):
    """An endpoint that takes no query parameters."""


# -- responses ---------------------------------------------------------------------------


class NotificationOut(_Output):
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


class AlertOut(_Output):
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


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    """One page of a filtered list and the total number of matches."""

    items: list[T]
    total: int
    skip: int
    limit: int


class NotificationPage(Page[NotificationOut]):
    """A page of notifications."""


class AlertPage(Page[AlertOut]):
    """A page of platform alerts."""


class RecentOut(BaseModel):
    """The newest unread notifications and the unread count, for the header bell."""

    items: list[NotificationOut]
    unread_count: int


class UnreadCountOut(BaseModel):
    """How many notifications nobody has read."""

    unread_count: int


class MarkedOut(BaseModel):
    """How many notifications a bulk mark-as-read changed."""

    marked: int


class AlertStatsOut(BaseModel):
    """Counts for the statistics cards and the breakdown of active alerts."""

    unread_notifications: int
    active_alerts: int
    critical_alerts: int
    resolved_today: int
    total_alerts: int
    by_severity: dict[str, int]
    by_type: dict[str, int]


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a sentence, and details (each bad field and why)."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    """Every error under /api has this shape."""

    error: ErrorBody
