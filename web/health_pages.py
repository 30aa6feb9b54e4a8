"""The Job health page: beat's state and every scheduled entry with its last run and state.

It renders from the same core reads as ``GET .../health/schedule``. The sections of other
checks (runs that hang, queues nobody consumes) join it as the partials
``notifier/partials/health_*.html``, included when present.
"""

from __future__ import annotations

from flask import render_template, url_for

from notifier import utcnow
from notifier.health import entry_states, scheduler_state

from .auth import login_required
from .pages import pages_blueprint
from .routing import guest_route
from .state import db_session


@guest_route(pages_blueprint, "/health")
@login_required
def job_health() -> str:
    """Beat's state and the scheduled entries: last run, next due time, state."""
    db = db_session()
    now = utcnow()
    return render_template(
        "notifier/health.html",
        now=now,
        scheduler=scheduler_state(db, now=now),
        entries=entry_states(db, now=now),
        api={"schedule": url_for("notifier_api.schedule_health")},
    )
