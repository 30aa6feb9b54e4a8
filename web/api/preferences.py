"""The signed-in admin's notification preferences: read and replace them.

The body's schema is generated from the core's vocabularies (channels, categories, modes,
levels), so the OpenAPI document lists exactly what is accepted; the core's
``save_preferences`` then applies the same rules again (``notifier/validation.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, create_model

from notifier.preferences import category_table, preferences_document, save_preferences
from notifier.validation import (
    CLOCK_PATTERN,
    QUIET_WINDOWS_MAX,
    TIME_ZONE_MAX,
    time_zone_problem,
    time_zones,
)

from ..auth import current_admin
from ..state import db_session
from .blueprint import api
from .errors import ApiError
from .operations import READ_ERRORS, WRITE_ERRORS, Reply
from .schemas import Input, Output, integral_value, validator_of

_Priority = Literal["low", "normal", "high", "critical"]
_Severity = Literal["info", "warning", "error", "critical"]


def _rule_model(name: str, modes: Any, levels: Any) -> type[BaseModel]:
    return create_model(
        name,
        __base__=Input,
        mode=(modes, ...),
        min_level=(levels | None, None),
    )


_RULES = {
    ("in_app", "notification"): _rule_model(
        "InAppNotificationRule", Literal["off", "immediate"], _Priority
    ),
    ("in_app", "alert"): _rule_model("InAppAlertRule", Literal["off", "immediate"], _Severity),
    ("email", "notification"): _rule_model(
        "EmailNotificationRule", Literal["off", "immediate", "digest"], _Priority
    ),
    ("email", "alert"): _rule_model(
        "EmailAlertRule", Literal["off", "immediate", "digest"], _Severity
    ),
}


def _channel_rules(channel: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        row["key"].replace(":", "__"): (
            _RULES[(channel, row["kind"])] | None,
            Field(None, alias=row["key"]),
        )
        for row in category_table()
    }
    return create_model(f"{channel.title().replace('_', '')}Rules", __base__=Input, **fields)


InAppRules = _channel_rules("in_app")
EmailRules = _channel_rules("email")


class RulesIn(Input):
    """Per channel, per category: a mode and a minimum level (left out: the default)."""

    in_app: InAppRules | None = None  # type: ignore[valid-type]
    email: EmailRules | None = None  # type: ignore[valid-type]


class ChannelsIn(Input):
    """The per-channel switches; a channel off gets only required notifications."""

    in_app: bool = True
    email: bool = True


Clock = Annotated[str, Field(pattern=CLOCK_PATTERN, description="HH:MM, 24-hour clock")]
Weekday = Annotated[
    int, Field(ge=0, le=6, description="0 is Monday"), BeforeValidator(integral_value)
]


class WindowIn(Input):
    """A weekly quiet window; an end at or before the start ends the next day."""

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    start: Clock
    end: Clock


class DigestIn(Input):
    """How often the digest comes, and at which local hour for a daily one."""

    frequency: Literal["off", "hourly", "daily"] = "off"
    hour: Annotated[int, Field(ge=0, le=23), BeforeValidator(integral_value)] = 8


TimeZone = Annotated[
    str,
    Field(max_length=TIME_ZONE_MAX, json_schema_extra={"enum": sorted(time_zones())}),
    AfterValidator(validator_of(time_zone_problem)),
]


class PreferencesIn(Input):
    """Body of PUT /preferences: the whole document; a part left out takes its default."""

    channels: ChannelsIn = Field(default_factory=ChannelsIn)
    rules: RulesIn = Field(default_factory=RulesIn)
    time_zone: TimeZone = "UTC"
    quiet_hours: Annotated[list[WindowIn], Field(max_length=QUIET_WINDOWS_MAX)] = Field(
        default_factory=list
    )
    digest: DigestIn = Field(default_factory=DigestIn)


class CategoryOut(Output):
    """A notification type or alert type, its levels, and from which level it is locked."""

    key: str
    kind: Literal["notification", "alert"]
    type: str
    levels: list[str]
    locked_at: str | None = Field(
        description="from this level up it is always delivered at once (cannot be turned off)"
    )


class RuleOut(Output):
    """One rule of the document: its mode and the least level it takes."""

    mode: Literal["off", "immediate", "digest"]
    min_level: str | None


class PreferencesOut(Output):
    """The admin's preferences, every channel and category filled in, and the categories."""

    channels: dict[str, bool]
    rules: dict[str, dict[str, RuleOut]]
    time_zone: str
    quiet_hours: list[WindowIn]
    digest: DigestIn
    categories: list[CategoryOut]


def _admin_id() -> int:
    admin = current_admin()
    if admin is None:  # the blueprint already answered 401; kept for the type checker
        raise ApiError(401, "sign in or send a bearer token")
    return admin.id


def _out(document: dict[str, Any]) -> PreferencesOut:
    return PreferencesOut.model_validate(document | {"categories": category_table()})


@api.route(
    "GET",
    "/preferences",
    summary="The signed-in admin's notification preferences (channels, types, quiet hours)",
    responses={200: PreferencesOut, **READ_ERRORS},
)
def get_preferences() -> Reply:
    """Every channel and category with its mode, the quiet hours and the digest."""
    return _out(preferences_document(db_session(), _admin_id())), 200


@api.route(
    "PUT",
    "/preferences",
    summary="Replace the signed-in admin's notification preferences",
    body=PreferencesIn,
    responses={200: PreferencesOut, **WRITE_ERRORS},
)
def put_preferences(body: PreferencesIn) -> Reply:
    """Save the whole document; a locked category set off is refused (422).

    A locked category's required events arrive whatever the document says.
    """
    db = db_session()
    document = body.model_dump(by_alias=True, exclude_none=True)
    saved = save_preferences(db, _admin_id(), document)
    db.commit()
    return _out(saved), 200
