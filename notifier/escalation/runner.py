"""The step runner: each open, unacknowledged, unsnoozed alert gets its policy's owed step.

Built on the reminder machinery (``notifier.reminders``): a step is claimed by a row in
``notifier_alert_reminders`` keyed by the alert and the moment the step fell due, inserted in
the transaction that queues its deliveries, so two beats, or one beat ticking twice, queue
each step once. The default policy's moments are the old reminder's, so a reminder sent
before an upgrade is not sent again. Steps count from the alert's opening or its last rise in
severity (which starts the policy over); acknowledging, snoozing or resolving stops them.
A beat that missed several steps owes only the latest one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import outbox
from ..alerts import snoozed_at
from ..enums import DeliveryChannel, DeliveryEvent
from ..models import AdminUser, DeliveryEndpoint, EscalationPolicy, PlatformAlert
from ..reminders import DEFAULT_REPEAT_INTERVAL, claim_reminder, remind_episode
from ..types import utcnow
from .policies import Plan, Step, default_plan, plan_for

__all__ = ["MINUTE", "Firing", "due_firing", "queue_escalations"]

#: The unit of a step's ``after_minutes`` (``notifier_escalation_minute`` in the worker).
MINUTE = timedelta(minutes=1)


class Firing:
    """One firing of a plan: which step, in which round, and when it fell due."""

    __slots__ = ("due", "number", "round", "step")

    def __init__(self, step: Step, number: int, round_: int, due: datetime) -> None:
        self.step, self.number, self.round, self.due = step, number, round_, due


def due_firing(plan: Plan, anchor: datetime, now: datetime) -> Firing | None:
    """The latest firing of ``plan`` due at ``now`` counted from ``anchor``, or None yet."""
    offsets: list[timedelta] = []
    total = timedelta(0)
    for step in plan.steps:
        total += step.after
        offsets.append(total)
    elapsed = now - anchor
    if not plan.steps or total <= timedelta(0) or elapsed < offsets[0]:
        return None
    round_ = min(elapsed // total, plan.repeat)
    into = elapsed - round_ * total
    index = max((i for i, offset in enumerate(offsets) if offset <= into), default=None)
    if index is None:  # before this round's first step: the last one of the round before
        round_, index = round_ - 1, len(offsets) - 1
    return Firing(
        plan.steps[index], index + 1, round_ + 1, anchor + round_ * total + offsets[index]
    )


def queue_escalations(
    db: Session,
    *,
    default_interval: timedelta | None = DEFAULT_REPEAT_INTERVAL,
    minute: timedelta = MINUTE,
    now: datetime | None = None,
) -> int:
    """Claim and queue every owed escalation step; returns the deliveries queued.

    ``default_interval``: the default policy's interval (None: no default policy).
    ``minute``: the length of a step's minute (tests shorten it). Does not commit; on SQLite
    give it an immediate transaction so a second beat waits for the first.
    """
    if minute <= timedelta(0):
        raise ValueError("minute must be positive")
    now = now or utcnow()
    policies = list(db.scalars(select(EscalationPolicy).where(EscalationPolicy.is_enabled)))
    default = default_plan(default_interval) if default_interval else None
    severities = {p.severity for p in policies} | ({"critical"} if default else set())
    if not severities:
        return 0
    anchor = func.coalesce(PlatformAlert.escalated_at, PlatformAlert.first_occurred_at)
    firsts = [p.steps[0]["after_minutes"] * minute for p in policies if p.steps]
    if default is not None:
        firsts.append(default.steps[0].after)
    alerts = db.scalars(
        select(PlatformAlert)
        .where(
            PlatformAlert.is_resolved.is_(False),
            PlatformAlert.severity.in_(severities),
            PlatformAlert.acknowledged_at.is_(None),
            PlatformAlert.held_back_by_id.is_(None),  # its root cause speaks for it
            ~snoozed_at(now),
            anchor <= now - min(firsts, default=timedelta(0)),
        )
        .order_by(PlatformAlert.id)
    ).all()
    queued = 0
    for alert in alerts:
        plan = plan_for(alert, policies, minute=minute, default=default)
        if plan is None:
            continue
        firing = due_firing(plan, alert.escalated_at or alert.first_occurred_at, now)
        if firing is not None and claim_reminder(db, alert.id, firing.due, now):
            queued += _fire(db, alert, plan, firing, now)
    return queued


def _fire(db: Session, alert: PlatformAlert, plan: Plan, firing: Firing, now: datetime) -> int:
    """Record the step on the alert and queue its deliveries (as ``alert.reminder``)."""
    alert.escalation_step, alert.escalation_step_at = firing.number, now
    payload = outbox.alert_payload(alert)
    label = f"step {firing.number} of {len(plan.steps)} ({plan.name})"
    if firing.round > 1:
        label += f", round {firing.round}"
    payload["escalation"] = {
        "policy_id": plan.policy_id,
        "policy": plan.name,
        "step": firing.number,
        "steps": len(plan.steps),
        "round": firing.round,
        "label": label,
    }
    step = firing.step
    queued = remind_episode(db, alert, now, payload) if step.episode else 0
    event_id = outbox.new_id("evt")
    endpoints = [db.get(DeliveryEndpoint, i) for i in step.endpoint_ids]
    chosen = [e for e in endpoints if e is not None and e.is_enabled]
    users = _active(db, step.user_ids)
    if users and not any(e.channel is DeliveryChannel.EMAIL for e in chosen):
        email = db.scalar(
            select(DeliveryEndpoint)
            .where(DeliveryEndpoint.channel == DeliveryChannel.EMAIL, DeliveryEndpoint.is_enabled)
            .order_by(DeliveryEndpoint.id)
            .limit(1)
        )
        chosen += [email] if email is not None else []
    for endpoint in chosen:
        queued += outbox.queue(
            db,
            endpoint,
            DeliveryEvent.ALERT_REMINDER,
            event_id,
            payload,
            now,
            alert_id=alert.id,
            recipients=users if endpoint.channel is DeliveryChannel.EMAIL and users else None,
        )
    return queued


def _active(db: Session, user_ids: tuple[int, ...]) -> list[int]:
    if not user_ids:
        return []
    active = select(AdminUser.id).where(AdminUser.id.in_(user_ids), AdminUser.is_active)
    return list(db.scalars(active.order_by(AdminUser.id)))
