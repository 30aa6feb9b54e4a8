"""The Escalation page: the policies, the built-in default, and a form to add or change one.

Rendered on the server from the core's reads; its buttons call the JSON API
(``escalation.js``), so every rule is the API's.
"""

from __future__ import annotations

from flask import render_template, url_for

from notifier import AlertType, Severity
from notifier.delivery import endpoint_service
from notifier.escalation import STEPS_MAX, default_plan, escalation_service

from .auth import login_required
from .pages import admin_names, enum_values, pages_blueprint
from .routing import guest_route
from .state import db_session

#: Step rows the form offers (a policy may have up to STEPS_MAX through the API).
FORM_STEPS = min(3, STEPS_MAX)


@guest_route(pages_blueprint, "/escalation")
@login_required
def escalation() -> str:
    """Every escalation policy, the default reminder, and the policy form."""
    db = db_session()
    policies = escalation_service.list(db)
    endpoints = {endpoint.id: endpoint for endpoint in endpoint_service.list(db)}
    user_ids = {user for p in policies for step in p.steps for user in step.get("user_ids", [])}
    return render_template(
        "notifier/escalation.html",
        policies=policies,
        endpoints=endpoints,
        users=admin_names(db, user_ids),
        default=default_plan(),
        form_steps=range(1, FORM_STEPS + 1),
        options={"severity": enum_values(Severity), "alert_type": enum_values(AlertType)},
        policies_api=url_for("notifier_api.list_escalation_policies"),
    )
