"""Platform alert endpoints.

List, create-or-increment, read one, resolve, acknowledge,
snooze, statistics.
"""

from __future__ import annotations

from flask import url_for

from notifier import get_statistics
from notifier import platform_alert_service as service

from ..auth import current_admin
from ..state import app_timezone, db_session
from .blueprint import api
from .operations import READ_ERRORS, WRITE_ERRORS, Reply, found, list_arguments, page_of
from .schemas import (
    AlertCreate,
    AlertOut,
    AlertPage,
    AlertQuery,
    AlertResolve,
    AlertSnooze,
    AlertStatsOut,
    ErrorOut,
)


@api.route(
    "GET",
    "/alerts",
    summary="List platform alerts, open first, then by latest occurrence",
    query=AlertQuery,
    responses={200: AlertPage, **READ_ERRORS},
)
def list_alerts(query: AlertQuery) -> Reply:
    """A filtered page of alerts."""
    result = service.page_alerts(db_session(), **list_arguments(query))
    items = [AlertOut.model_validate(item) for item in result.items]
    return page_of(AlertPage, items, result, query), 200


@api.route(
    "POST",
    "/alerts",
    summary="Open an alert, or count one more occurrence of the open alert with its fingerprint",
    body=AlertCreate,
    responses={201: AlertOut, 200: AlertOut, **WRITE_ERRORS},
)
def create_alert(body: AlertCreate) -> Reply:
    """Create-or-increment: 201 when opened, 200 when an open alert was incremented."""
    db = db_session()
    alert, created = service.create_or_increment_alert(
        db,
        alert_type=body.alert_type,
        severity=body.severity,
        title=body.title,
        fingerprint=body.fingerprint,
        description=body.description,
        affected_stores=body.affected_stores,
        affected_systems=body.affected_systems,
        metadata=body.alert_metadata,
        owner=body.owner,
        runbook=body.runbook,
    )
    db.commit()
    location = url_for(".get_alert", alert_id=alert.id)
    return AlertOut.model_validate(alert), 201 if created else 200, {"Location": location}


@api.route(
    "GET",
    "/alerts/stats",
    summary="Counts for the statistics cards and the breakdown of active alerts",
    responses={200: AlertStatsOut, **READ_ERRORS},
)
def alert_stats() -> Reply:
    """The alert statistics."""
    stats = get_statistics(db_session(), tz=app_timezone())
    return AlertStatsOut.model_validate(stats), 200


@api.route(
    "GET",
    "/alerts/{alert_id}",
    summary="One platform alert",
    responses={200: AlertOut, 404: ErrorOut, **READ_ERRORS},
)
def get_alert(alert_id: int) -> Reply:
    """One alert by id."""
    alert = found(service.get_alert(db_session(), alert_id), "platform alert", alert_id)
    return AlertOut.model_validate(alert), 200


@api.route(
    "PUT",
    "/alerts/{alert_id}/resolve",
    summary="Resolve an open alert with notes (409 when it is already resolved)",
    body=AlertResolve,
    responses={200: AlertOut, 404: ErrorOut, 409: ErrorOut, **WRITE_ERRORS},
)
def resolve_alert(body: AlertResolve, alert_id: int) -> Reply:
    """Resolve an alert by the caller."""
    db = db_session()
    admin = current_admin()
    alert = service.resolve_alert(
        db,
        alert_id,
        user_id=admin.id if admin else None,
        resolution_notes=body.resolution_notes,
    )
    alert = found(alert, "platform alert", alert_id)
    db.commit()
    return AlertOut.model_validate(alert), 200


_LIFECYCLE_ERRORS = {404: ErrorOut, 409: ErrorOut, **WRITE_ERRORS}


@api.route(
    "PUT",
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an open alert: reminders stop (the first acknowledgment is kept)",
    responses={200: AlertOut, **_LIFECYCLE_ERRORS},
)
def acknowledge_alert(alert_id: int) -> Reply:
    """Acknowledge an alert as the caller; 409 when it is resolved."""
    db = db_session()
    admin = current_admin()
    alert = service.acknowledge_alert(db, alert_id, user_id=admin.id if admin else None, via="web")
    alert = found(alert, "platform alert", alert_id)
    db.commit()
    return AlertOut.model_validate(alert), 200


@api.route(
    "DELETE",
    "/alerts/{alert_id}/acknowledge",
    summary="Withdraw an open alert's acknowledgment: reminders resume",
    responses={200: AlertOut, **_LIFECYCLE_ERRORS},
)
def unacknowledge_alert(alert_id: int) -> Reply:
    """Unacknowledge an alert; 409 when it is resolved."""
    db = db_session()
    alert = found(service.unacknowledge_alert(db, alert_id), "platform alert", alert_id)
    db.commit()
    return AlertOut.model_validate(alert), 200


@api.route(
    "PUT",
    "/alerts/{alert_id}/snooze",
    summary="Snooze an open alert until a time (at most 30 days): out of the active lists "
    "and silent until then, unless its severity rises",
    body=AlertSnooze,
    responses={200: AlertOut, **_LIFECYCLE_ERRORS},
)
def snooze_alert(body: AlertSnooze, alert_id: int) -> Reply:
    """Snooze an alert; 422 for a time past or too far, 409 when it is resolved."""
    db = db_session()
    alert = service.snooze_alert(db, alert_id, until=body.until)
    alert = found(alert, "platform alert", alert_id)
    db.commit()
    return AlertOut.model_validate(alert), 200


@api.route(
    "DELETE",
    "/alerts/{alert_id}/snooze",
    summary="End an open alert's snooze now",
    responses={200: AlertOut, **_LIFECYCLE_ERRORS},
)
def unsnooze_alert(alert_id: int) -> Reply:
    """Unsnooze an alert; 409 when it is resolved."""
    db = db_session()
    alert = found(service.unsnooze_alert(db, alert_id), "platform alert", alert_id)
    db.commit()
    return AlertOut.model_validate(alert), 200
