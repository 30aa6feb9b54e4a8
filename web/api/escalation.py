"""Escalation policy endpoints: list, create, read, change and delete.

The rules (steps, targets, bounds) are the core's (``notifier.escalation``); the schemas
below say the same bounds so the OpenAPI document and generated clients agree with them.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import url_for
from pydantic import AfterValidator, BaseModel, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from notifier import AlertType, Severity
from notifier.escalation import AFTER_MINUTES_MAX, REPEAT_MAX, STEPS_MAX, escalation_service
from notifier.models import EscalationPolicy

from ..state import db_session
from .blueprint import api
from .operations import READ_ERRORS, WRITE_ERRORS, Reply, found
from .schemas import (
    ErrorOut,
    Input,
    Output,
    OwnerName,
    StoreId,
    Timestamp,
    text_field,
    text_validator,
)

_NAME_MAX = 100
PolicyName = Annotated[str, text_field(_NAME_MAX), AfterValidator(text_validator(_NAME_MAX))]
_Ids = Annotated[list[StoreId], Field(max_length=100)]


class EscalationStep(Input):
    """One step: minutes unacknowledged since the step before, and whom it notifies."""

    after_minutes: Annotated[int, Field(ge=1, le=AFTER_MINUTES_MAX)]
    endpoint_ids: _Ids = Field(default_factory=list, description="Delivery endpoints to notify.")
    user_ids: _Ids = Field(
        default_factory=list, description="Admins to email (through the email endpoint)."
    )
    episode: bool = Field(
        default=False, description="Also email whoever was emailed about the alert's episode."
    )


_Steps = Annotated[list[EscalationStep], Field(min_length=1, max_length=STEPS_MAX)]
_Repeat = Annotated[int, Field(ge=0, le=REPEAT_MAX)]


class EscalationPolicyCreate(Input):
    """Body of POST /escalation-policies. A null alert_type or owner matches any."""

    name: PolicyName
    severity: Severity
    alert_type: AlertType | None = None
    owner: OwnerName | None = None
    steps: _Steps
    repeat: _Repeat = Field(default=0, description="Runs of the steps after the first.")
    is_enabled: bool = True


class EscalationPolicyUpdate(Input):
    """Body of PATCH /escalation-policies/{id}: only the fields sent change."""

    name: PolicyName | SkipJsonSchema[None] = None
    severity: Severity | SkipJsonSchema[None] = None
    alert_type: AlertType | None = None
    owner: OwnerName | None = None
    steps: _Steps | SkipJsonSchema[None] = None
    repeat: _Repeat | SkipJsonSchema[None] = None
    is_enabled: bool | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _no_null_where_none_is_meant(self) -> EscalationPolicyUpdate:
        nullable = {"alert_type", "owner"}
        for name in sorted(self.model_fields_set - nullable):
            if getattr(self, name) is None:
                raise ValueError(f"{name} must not be null; leave it out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent, as the escalation service takes them."""
        fields = {name: getattr(self, name) for name in self.model_fields_set}
        if self.steps is not None:
            fields["steps"] = [step.model_dump() for step in self.steps]
        return fields


class EscalationStepOut(BaseModel):
    """One stored step."""

    after_minutes: int
    endpoint_ids: list[int]
    user_ids: list[int]
    episode: bool


class EscalationPolicyOut(Output):
    """An escalation policy."""

    id: int
    name: str
    severity: Severity
    alert_type: AlertType | None
    owner: str | None
    steps: list[EscalationStepOut]
    repeat: int
    is_enabled: bool
    created_at: Timestamp
    updated_at: Timestamp


class EscalationPolicyListOut(BaseModel):
    """Every policy, oldest first."""

    items: list[EscalationPolicyOut]


_ONE = {404: ErrorOut}


def _policy(policy_id: int) -> EscalationPolicy:
    policy = escalation_service.get(db_session(), policy_id)
    return found(policy, "escalation policy", policy_id)


@api.route(
    "GET",
    "/escalation-policies",
    summary="List escalation policies (critical alerts without one follow the default reminder)",
    responses={200: EscalationPolicyListOut, **READ_ERRORS},
)
def list_escalation_policies() -> Reply:
    """Every policy, oldest first."""
    items = [EscalationPolicyOut.model_validate(p) for p in escalation_service.list(db_session())]
    return EscalationPolicyListOut(items=items), 200


@api.route(
    "POST",
    "/escalation-policies",
    summary="Create an escalation policy for a severity (and optionally an alert type and owner)",
    body=EscalationPolicyCreate,
    responses={201: EscalationPolicyOut, **WRITE_ERRORS},
)
def create_escalation_policy(body: EscalationPolicyCreate) -> Reply:
    """Create a policy; 422 names an unknown endpoint or admin, or a step notifying nobody."""
    db = db_session()
    fields = body.model_dump()
    policy = escalation_service.create(db, **fields)
    db.commit()
    location = url_for(".get_escalation_policy", policy_id=policy.id)
    return EscalationPolicyOut.model_validate(policy), 201, {"Location": location}


@api.route(
    "GET",
    "/escalation-policies/{policy_id}",
    summary="One escalation policy",
    responses={200: EscalationPolicyOut, **READ_ERRORS, **_ONE},
)
def get_escalation_policy(policy_id: int) -> Reply:
    """One policy by id."""
    return EscalationPolicyOut.model_validate(_policy(policy_id)), 200


@api.route(
    "PATCH",
    "/escalation-policies/{policy_id}",
    summary="Change an escalation policy (steps already fired are not fired again)",
    body=EscalationPolicyUpdate,
    responses={200: EscalationPolicyOut, **WRITE_ERRORS, **_ONE},
)
def update_escalation_policy(body: EscalationPolicyUpdate, policy_id: int) -> Reply:
    """Change the fields sent."""
    db = db_session()
    policy = _policy(policy_id)
    escalation_service.update(db, policy, **body.changes())
    db.commit()
    return EscalationPolicyOut.model_validate(policy), 200


@api.route(
    "DELETE",
    "/escalation-policies/{policy_id}",
    summary="Delete an escalation policy",
    responses={204: None, **WRITE_ERRORS, **_ONE},
)
def delete_escalation_policy(policy_id: int) -> Reply:
    """Delete a policy; its alerts follow the next fitting one."""
    db = db_session()
    escalation_service.delete(db, _policy(policy_id))
    db.commit()
    return None, 204
