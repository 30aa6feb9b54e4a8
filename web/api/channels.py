"""Delivery endpoint routes, behind the Channels page.

Delivery endpoints (the Channels page): create, list, change, enable or disable, rotate
the signing secret, send a test event, delete.

A URL is checked by the engine's rules when it is saved (and again at every send); whether
plain http and private addresses are allowed is the app's ``NOTIFIER_DELIVERY_ALLOW_PRIVATE``.
"""

from __future__ import annotations

from flask import current_app, url_for

from notifier import (
    AlertType,
    DeliveryChannel,
    DeliveryEvent,
    DeliveryRefusedError,
    NotificationType,
    utcnow,
)
from notifier.delivery import Backlog, delivery_log, display_url, endpoint_service
from notifier.models import Delivery, DeliveryEndpoint

from ..state import db_session
from .blueprint import api
from .delivery_schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointListOut,
    EndpointOut,
    EndpointSecretOut,
    EndpointUpdate,
    TestQueuedOut,
)
from .errors import ApiError
from .operations import READ_ERRORS, WRITE_ERRORS, Reply, found
from .schemas import ErrorOut

_ONE = {404: ErrorOut}
_CONFLICT = {409: ErrorOut}


def _allow_private() -> bool:
    return bool(current_app.config["NOTIFIER_DELIVERY_ALLOW_PRIVATE"])


def endpoint_out(endpoint: DeliveryEndpoint, backlog: Backlog | None = None) -> EndpointOut:
    """The endpoint as admins see it: its health, never its secret or credential URL."""
    backlog = backlog or Backlog()
    expires = endpoint.previous_secret_expires_at
    rotating = endpoint.previous_secret is not None and expires is not None and expires > utcnow()
    return EndpointOut(
        id=endpoint.id,
        name=endpoint.name,
        channel=endpoint.channel,
        display_url=display_url(endpoint),
        has_secret=bool(endpoint.secret),
        secret_rotation_ends_at=expires if rotating else None,
        event_types=[DeliveryEvent(e) for e in endpoint.event_types or []],
        notification_types=[NotificationType(t) for t in endpoint.notification_types or []],
        alert_types=[AlertType(t) for t in endpoint.alert_types or []],
        store_ids=list(endpoint.store_ids or []),
        min_priority=endpoint.min_priority,
        min_severity=endpoint.min_severity,
        owners=list(endpoint.owners or []),
        is_enabled=endpoint.is_enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        last_success_at=endpoint.last_success_at,
        created_at=endpoint.created_at,
        pending_deliveries=backlog.pending,
        failed_deliveries=backlog.failed,
    )


def _one(endpoint_id: int) -> tuple[DeliveryEndpoint, EndpointOut]:
    db = db_session()
    endpoint = found(endpoint_service.get(db, endpoint_id), "delivery endpoint", endpoint_id)
    return endpoint, endpoint_out(endpoint, delivery_log.backlog(db).get(endpoint.id))


def _with_secret(endpoint: DeliveryEndpoint, secret: str | None) -> EndpointSecretOut:
    backlog = delivery_log.backlog(db_session()).get(endpoint.id)
    return EndpointSecretOut(**endpoint_out(endpoint, backlog).model_dump(), secret=secret)


@api.route(
    "GET",
    "/endpoints",
    summary="List delivery endpoints (webhook, Slack, Teams, PagerDuty, Apprise, email)",
    responses={200: EndpointListOut, **READ_ERRORS},
)
def list_endpoints() -> Reply:
    """Every endpoint, oldest first, with its pending and failed deliveries."""
    db = db_session()
    backlog = delivery_log.backlog(db)
    items = [endpoint_out(e, backlog.get(e.id)) for e in endpoint_service.list(db)]
    return EndpointListOut(items=items), 200


@api.route(
    "POST",
    "/endpoints",
    summary="Create an endpoint; a webhook's signing secret is in this answer only",
    body=EndpointCreate,
    responses={201: EndpointSecretOut, **WRITE_ERRORS},
)
def create_endpoint(body: EndpointCreate) -> Reply:
    """Create an enabled endpoint and return it with its secret (shown once)."""
    db = db_session()
    endpoint, secret = endpoint_service.create(
        db,
        name=body.name,
        channel=body.channel,
        url=body.url,
        routing_key=body.routing_key,
        event_types=body.event_types,
        notification_types=body.notification_types,
        alert_types=body.alert_types,
        store_ids=body.store_ids,
        min_priority=body.min_priority,
        min_severity=body.min_severity,
        owners=body.owners,
        allow_private=_allow_private(),
    )
    db.commit()
    location = url_for(".get_endpoint", endpoint_id=endpoint.id)
    return _with_secret(endpoint, secret), 201, {"Location": location}


@api.route(
    "GET",
    "/endpoints/{endpoint_id}",
    summary="One delivery endpoint with its health",
    responses={200: EndpointOut, **READ_ERRORS, **_ONE},
)
def get_endpoint(endpoint_id: int) -> Reply:
    """One endpoint by id."""
    return _one(endpoint_id)[1], 200


@api.route(
    "PATCH",
    "/endpoints/{endpoint_id}",
    summary="Change an endpoint's name, URL or filter (only the fields sent)",
    body=EndpointUpdate,
    responses={200: EndpointOut, **WRITE_ERRORS, **_ONE},
)
def update_endpoint(body: EndpointUpdate, endpoint_id: int) -> Reply:
    """Partial update; the URL is checked again."""
    db = db_session()
    endpoint = found(endpoint_service.get(db, endpoint_id), "delivery endpoint", endpoint_id)
    endpoint_service.update(db, endpoint, allow_private=_allow_private(), **body.changes())
    db.commit()
    return _one(endpoint_id)[1], 200


def _set_enabled(endpoint_id: int, enabled: bool) -> Reply:
    db = db_session()
    endpoint = found(endpoint_service.get(db, endpoint_id), "delivery endpoint", endpoint_id)
    endpoint_service.set_enabled(db, endpoint, enabled)
    db.commit()
    return _one(endpoint_id)[1], 200


@api.route(
    "PUT",
    "/endpoints/{endpoint_id}/enable",
    summary="Enable an endpoint (clears its failure streak; its waiting deliveries go out)",
    responses={200: EndpointOut, **WRITE_ERRORS, **_ONE},
)
def enable_endpoint(endpoint_id: int) -> Reply:
    """Enable; idempotent."""
    return _set_enabled(endpoint_id, True)


@api.route(
    "PUT",
    "/endpoints/{endpoint_id}/disable",
    summary="Disable an endpoint (nothing is sent to it; new events skip it)",
    responses={200: EndpointOut, **WRITE_ERRORS, **_ONE},
)
def disable_endpoint(endpoint_id: int) -> Reply:
    """Disable; idempotent."""
    return _set_enabled(endpoint_id, False)


@api.route(
    "POST",
    "/endpoints/{endpoint_id}/rotate-secret",
    summary="New signing secret (in this answer only); the old one signs too for 24 hours",
    responses={200: EndpointSecretOut, **WRITE_ERRORS, **_ONE, **_CONFLICT},
)
def rotate_endpoint_secret(endpoint_id: int) -> Reply:
    """Rotate a webhook's secret; 409 for the other kinds (a routing key changes by PATCH)."""
    db = db_session()
    endpoint = found(endpoint_service.get(db, endpoint_id), "delivery endpoint", endpoint_id)
    try:
        secret = endpoint_service.rotate_secret(db, endpoint)
    except DeliveryRefusedError as exc:
        raise ApiError(409, str(exc)) from None
    db.commit()
    return _with_secret(endpoint, secret), 200


@api.route(
    "POST",
    "/endpoints/{endpoint_id}/test",
    summary="Queue an endpoint.test event for this endpoint (the dispatcher sends it)",
    responses={202: TestQueuedOut, **WRITE_ERRORS, **_ONE, **_CONFLICT},
)
def test_endpoint(endpoint_id: int) -> Reply:
    """Queue a test event; 409 when the endpoint is disabled (nothing would be sent)."""
    db = db_session()
    endpoint = found(endpoint_service.get(db, endpoint_id), "delivery endpoint", endpoint_id)
    if not endpoint.is_enabled:
        raise ApiError(409, "the endpoint is disabled; enable it before sending a test")
    endpoint_service.send_test(db, endpoint)
    # Exactly the rows send_test added (one per admin for email), before anything else runs.
    queued = [row for row in db.new if isinstance(row, Delivery)]
    db.flush()
    deliveries = [DeliveryOut.of(row) for row in sorted(queued, key=lambda row: row.id)]
    db.commit()
    return TestQueuedOut(queued=len(deliveries), deliveries=deliveries), 202


@api.route(
    "DELETE",
    "/endpoints/{endpoint_id}",
    summary="Delete an endpoint and its delivery log (the email endpoint can only be disabled)",
    responses={204: None, **WRITE_ERRORS, **_ONE, **_CONFLICT},
)
def delete_endpoint(endpoint_id: int) -> Reply:
    """Delete; 409 for the built-in email endpoint, which comes back while SMTP is set."""
    db = db_session()
    endpoint = found(endpoint_service.get(db, endpoint_id), "delivery endpoint", endpoint_id)
    if endpoint.channel is DeliveryChannel.EMAIL:
        raise ApiError(409, "the email endpoint cannot be deleted; disable it instead")
    endpoint_service.delete(db, endpoint)
    db.commit()
    return None, 204
