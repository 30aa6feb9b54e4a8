"""The delivery pages: Channels (endpoints and their health) and the Delivery log.

Both render on the server from the same core reads as the API (``notifier.delivery.log``); the
buttons call the JSON API (``channels.js``), so every rule is the API's.
"""

from __future__ import annotations

from flask import render_template, url_for

from notifier import DeliveryEvent, DeliveryStatus, Priority, Severity
from notifier.delivery import delivery_log, display_url, endpoint_service

from .api.delivery_schemas import DeliveryQuery
from .auth import login_required
from .pages import (
    PER_PAGE,
    Filters,
    admin_names,
    enum_values,
    listing,
    page_number,
    pages_blueprint,
)
from .routing import guest_route
from .state import db_session


def _api_urls() -> dict[str, str]:
    return {
        "endpoints": url_for("notifier_api.list_endpoints"),
        "deliveries": url_for("notifier_api.list_deliveries"),
    }


@guest_route(pages_blueprint, "/channels")
@login_required
def channels() -> str:
    """Every delivery endpoint with its health, and a form to add one."""
    db = db_session()
    endpoints = endpoint_service.list(db)
    return render_template(
        "notifier/channels.html",
        endpoints=endpoints,
        backlog=delivery_log.backlog(db),
        shown_url=display_url,
        options={
            "event_types": enum_values(DeliveryEvent),
            "priority": enum_values(Priority),
            "severity": enum_values(Severity),
        },
        api=_api_urls(),
    )


@guest_route(pages_blueprint, "/deliveries")
@login_required
def deliveries() -> str:
    """The delivery log: newest first, filtered like the API, attempts under each row."""
    db = db_session()
    filters = Filters(DeliveryQuery)
    page = page_number()
    items, total = delivery_log.page(
        db,
        status=filters.get("status"),
        endpoint_id=filters.get("endpoint_id"),
        event_type=filters.get("event_type"),
        skip=(page - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    endpoints = {endpoint.id: endpoint for endpoint in endpoint_service.list(db)}
    recipients = admin_names(
        db, {d.recipient_user_id for d in items if d.recipient_user_id is not None}
    )
    return render_template(
        "notifier/deliveries.html",
        log=listing(items, total, page, filters, view=".deliveries"),
        attempts=delivery_log.attempts(db, [d.id for d in items]),
        endpoints=endpoints,
        recipients=recipients,
        filters=filters.values | {"active": filters.active},
        notices=filters.notices,
        options={
            "status": enum_values(DeliveryStatus),
            "event_type": enum_values(DeliveryEvent),
        },
        api=_api_urls(),
    )
