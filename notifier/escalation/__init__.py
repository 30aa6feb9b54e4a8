"""Escalation: per-severity policies of steps, and the runner that fires them on the beat.

The face of the sub-package: worker/ and web/ import escalation only from here.
"""

from __future__ import annotations

from .policies import AFTER_MINUTES_MAX as AFTER_MINUTES_MAX
from .policies import DEFAULT_REPEATS as DEFAULT_REPEATS
from .policies import REPEAT_MAX as REPEAT_MAX
from .policies import STEPS_MAX as STEPS_MAX
from .policies import EscalationService as EscalationService
from .policies import Plan as Plan
from .policies import Step as Step
from .policies import default_plan as default_plan
from .policies import escalation_service as escalation_service
from .policies import plan_for as plan_for
from .runner import MINUTE as MINUTE
from .runner import due_firing as due_firing
from .runner import queue_escalations as queue_escalations

__all__ = [
    "AFTER_MINUTES_MAX",
    "DEFAULT_REPEATS",
    "MINUTE",
    "REPEAT_MAX",
    "STEPS_MAX",
    "EscalationService",
    "Plan",
    "Step",
    "default_plan",
    "due_firing",
    "escalation_service",
    "plan_for",
    "queue_escalations",
]
