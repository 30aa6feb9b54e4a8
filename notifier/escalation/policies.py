"""Escalation policies: their rules, their storage, and which one an alert follows.

A policy names a severity (and optionally an alert type and an owner) and a list of steps;
each step says after how many minutes unacknowledged it fires and whom it notifies. The
most specific enabled policy wins (owner and type, then owner, then type, then severity
alone; the oldest on a tie). A critical alert without a stored policy follows the default,
which is the reminder the notifier always sent: the episode's recipients every 4 hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..enums import AlertType, DeliveryChannel, Severity
from ..models import AdminUser, DeliveryEndpoint, EscalationPolicy, PlatformAlert
from ..reminders import DEFAULT_REPEAT_INTERVAL
from ..types import utcnow
from ..validation import OWNER_MAX, Checker

__all__ = [
    "AFTER_MINUTES_MAX",
    "DEFAULT_REPEATS",
    "REPEAT_MAX",
    "STEPS_MAX",
    "EscalationService",
    "Plan",
    "Step",
    "default_plan",
    "escalation_service",
    "plan_for",
]

#: At most this many steps in one policy, each at most a week after the one before.
STEPS_MAX = 10
AFTER_MINUTES_MAX = 7 * 24 * 60
#: How many times a policy's steps may run again after the last one.
REPEAT_MAX = 100
#: The default policy's repeats: the 4-hour reminder is sent at most 6 times (a day).
DEFAULT_REPEATS = 5
NAME_MAX = 100
_TARGETS = 100
_FIELDS = ("name", "severity", "alert_type", "owner", "steps", "repeat", "is_enabled")


@dataclass(frozen=True)
class Step:
    """One step: after ``after`` unacknowledged (counted from the previous step), notify."""

    after: timedelta
    endpoint_ids: tuple[int, ...] = ()
    user_ids: tuple[int, ...] = ()
    #: Whoever was emailed about the alert's episode (the reminder's audience).
    episode: bool = False


@dataclass(frozen=True)
class Plan:
    """The steps an alert follows, how often they repeat, and the policy they come from."""

    name: str
    steps: tuple[Step, ...]
    repeat: int
    policy_id: int | None = None


def default_plan(interval: timedelta = DEFAULT_REPEAT_INTERVAL) -> Plan:
    """The built-in policy of critical alerts: remind the episode's recipients every interval."""
    return Plan("Default reminder", (Step(after=interval, episode=True),), DEFAULT_REPEATS)


def plan_of(policy: EscalationPolicy, minute: timedelta) -> Plan:
    """A stored policy as a plan; ``minute`` is the unit of ``after_minutes`` (tests: 1 s)."""
    steps = tuple(
        Step(
            after=int(step["after_minutes"]) * minute,
            endpoint_ids=tuple(step.get("endpoint_ids") or ()),
            user_ids=tuple(step.get("user_ids") or ()),
            episode=bool(step.get("episode")),
        )
        for step in policy.steps
    )
    return Plan(policy.name, steps, policy.repeat, policy.id)


def _specificity(policy: EscalationPolicy) -> tuple[int, int]:
    return (-(2 * (policy.owner is not None) + (policy.alert_type is not None)), policy.id)


def plan_for(
    alert: PlatformAlert,
    policies: Sequence[EscalationPolicy],
    *,
    minute: timedelta,
    default: Plan | None,
) -> Plan | None:
    """The plan ``alert`` follows among enabled ``policies``, else ``default`` if critical."""
    fitting = [
        p
        for p in policies
        if p.is_enabled
        and p.severity == alert.severity
        and p.alert_type in (None, alert.alert_type)
        and p.owner in (None, alert.owner)
    ]
    if fitting:
        return plan_of(min(fitting, key=_specificity), minute)
    return default if alert.severity is Severity.CRITICAL else None


class EscalationService:
    """Create, list, change and delete policies; each takes the session and never commits."""

    def list(self, db: Session) -> list[EscalationPolicy]:
        """Every policy, oldest first."""
        return list(db.scalars(select(EscalationPolicy).order_by(EscalationPolicy.id)))

    def get(self, db: Session, policy_id: int) -> EscalationPolicy | None:
        """One policy, or None."""
        return db.get(EscalationPolicy, policy_id)

    def create(self, db: Session, **fields: Any) -> EscalationPolicy:
        """A new policy; a ValidationError names every bad field."""
        policy = EscalationPolicy(repeat=0, is_enabled=True, alert_type=None, owner=None)
        check = Checker()
        for required in ("name", "severity", "steps"):
            if fields.get(required) is None:
                check.fail(required, "is required")
        self._apply(db, check, policy, fields)
        db.add(policy)
        db.flush()
        return policy

    def update(self, db: Session, policy: EscalationPolicy, **fields: Any) -> EscalationPolicy:
        """Change some fields of ``policy`` (a null alert_type or owner matches any)."""
        check = Checker()
        for name in ("name", "severity", "steps", "repeat", "is_enabled"):
            if name in fields and fields[name] is None:
                check.fail(name, "must not be null")
        self._apply(
            db,
            check,
            policy,
            {k: v for k, v in fields.items() if v is not None or k in ("alert_type", "owner")},
        )
        policy.updated_at = utcnow()
        db.flush()
        return policy

    def delete(self, db: Session, policy: EscalationPolicy) -> None:
        """Delete a policy; its alerts fall back to the next fitting one."""
        db.delete(policy)
        db.flush()

    def _apply(
        self, db: Session, check: Checker, policy: EscalationPolicy, fields: dict[str, Any]
    ) -> None:
        for unknown in sorted(set(fields) - set(_FIELDS)):
            check.fail(unknown, "unknown field")
        if fields.get("name") is not None:
            policy.name = check.text("name", fields["name"], max_length=NAME_MAX) or ""
        if fields.get("severity") is not None:
            policy.severity = check.enum("severity", fields["severity"], Severity)
        if "alert_type" in fields:
            value = fields["alert_type"]
            policy.alert_type = (
                None if value is None else check.enum("alert_type", value, AlertType)
            )
        if "owner" in fields:
            policy.owner = check.text(
                "owner", fields["owner"], max_length=OWNER_MAX, required=False
            )
        if fields.get("repeat") is not None:
            repeat = fields["repeat"]
            if (
                isinstance(repeat, bool)
                or not isinstance(repeat, int)
                or not 0 <= repeat <= REPEAT_MAX
            ):
                check.fail("repeat", f"must be an integer from 0 to {REPEAT_MAX}")
            else:
                policy.repeat = repeat
        if fields.get("is_enabled") is not None:
            if not isinstance(fields["is_enabled"], bool):
                check.fail("is_enabled", "must be true or false")
            else:
                policy.is_enabled = fields["is_enabled"]
        if fields.get("steps") is not None:
            policy.steps = _steps(db, check, fields["steps"])
        check.done()


def _steps(db: Session, check: Checker, value: Any) -> list[dict[str, Any]]:
    """The steps as stored, or failures on ``steps`` naming the first bad one."""
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= STEPS_MAX:
        check.fail("steps", f"must be a list of 1 to {STEPS_MAX} steps")
        return []
    endpoints = {e.id: e for e in db.scalars(select(DeliveryEndpoint))}
    admins = set(db.scalars(select(AdminUser.id).where(AdminUser.is_active)))
    steps: list[dict[str, Any]] = []
    for number, raw in enumerate(value, start=1):
        problem = _step_problem(raw, endpoints, admins)
        if problem:
            check.fail("steps", f"step {number}: {problem}")
            return []
        steps.append(
            {
                "after_minutes": raw["after_minutes"],
                "endpoint_ids": sorted(set(raw.get("endpoint_ids") or ())),
                "user_ids": sorted(set(raw.get("user_ids") or ())),
                "episode": bool(raw.get("episode", False)),
            }
        )
    return steps


def _ids_problem(value: Any, known: Any, what: str) -> str | None:
    if not isinstance(value, list | tuple) or len(value) > _TARGETS:
        return f"{what} must be a list of at most {_TARGETS} ids"
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            return f"{what} must contain only integer ids"
        if item not in known:
            return f"{what}: no such {what.removesuffix('_ids')} {item}"
    return None


def _step_problem(raw: Any, endpoints: dict[int, DeliveryEndpoint], admins: set[int]) -> str | None:
    if not isinstance(raw, dict):
        return "must be an object with after_minutes and whom to notify"
    unknown = set(raw) - {"after_minutes", "endpoint_ids", "user_ids", "episode"}
    if unknown:
        return f"unknown field {sorted(unknown)[0]}"
    after = raw.get("after_minutes")
    if isinstance(after, bool) or not isinstance(after, int) or not 1 <= after <= AFTER_MINUTES_MAX:
        return f"after_minutes must be an integer from 1 to {AFTER_MINUTES_MAX}"
    if not isinstance(raw.get("episode", False), bool):
        return "episode must be true or false"
    endpoint_ids, user_ids = raw.get("endpoint_ids") or [], raw.get("user_ids") or []
    problem = _ids_problem(endpoint_ids, endpoints, "endpoint_ids") or _ids_problem(
        user_ids, admins, "user_ids"
    )
    if problem:
        return problem.replace("no such user", "no active admin").replace(
            "no such endpoint", "no delivery endpoint"
        )
    if user_ids and not any(e.channel is DeliveryChannel.EMAIL for e in endpoints.values()):
        return "user_ids need an email endpoint (configure SMTP first)"
    if not (endpoint_ids or user_ids or raw.get("episode")):
        return "notifies nobody: give endpoint_ids, user_ids or episode true"
    return None


escalation_service = EscalationService()
