"""The delivery log: list and filter deliveries, read one with its attempts, replay."""

from __future__ import annotations

from notifier import DeliveryStatus
from notifier.delivery import (
    delivery_log,
    endpoint_service,
    replay_failed_delivery,
    replay_failed_since,
)

from ..state import db_session
from .blueprint import api
from .delivery_schemas import (
    AttemptOut,
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    ReplayedOut,
    ReplayFailed,
)
from .errors import ApiError
from .operations import READ_ERRORS, WRITE_ERRORS, Reply, found, list_arguments, page_of
from .schemas import ErrorOut

_ONE = {404: ErrorOut}


@api.route(
    "GET",
    "/deliveries",
    summary="List deliveries, newest first; filter by status, endpoint and event type",
    query=DeliveryQuery,
    responses={200: DeliveryPage, **READ_ERRORS},
)
def list_deliveries(query: DeliveryQuery) -> Reply:
    """A filtered page of deliveries."""
    items, total = delivery_log.page(db_session(), **list_arguments(query))
    return page_of(DeliveryPage, [DeliveryOut.of(item) for item in items], total, query), 200


@api.route(
    "GET",
    "/deliveries/{delivery_id}",
    summary="One delivery with its payload and every attempt",
    responses={200: DeliveryDetailOut, **READ_ERRORS, **_ONE},
)
def get_delivery(delivery_id: int) -> Reply:
    """One delivery by id, with its attempts oldest first."""
    db = db_session()
    delivery = found(delivery_log.get(db, delivery_id), "delivery", delivery_id)
    attempts = delivery_log.attempts(db, [delivery.id])[delivery.id]
    detail = DeliveryDetailOut(
        **DeliveryOut.of(delivery).model_dump(),
        payload=dict(delivery.payload or {}),
        attempts=[AttemptOut.model_validate(attempt) for attempt in attempts],
    )
    return detail, 200


@api.route(
    "POST",
    "/deliveries/{delivery_id}/replay",
    summary="Send a failed delivery again from a fresh retry schedule (same webhook-id)",
    responses={200: DeliveryOut, **WRITE_ERRORS, **_ONE, 409: ErrorOut},
)
def replay_delivery(delivery_id: int) -> Reply:
    """Replay one failed delivery; 409 when it is pending or succeeded."""
    db = db_session()
    delivery = found(delivery_log.get(db, delivery_id), "delivery", delivery_id)
    if delivery.status is not DeliveryStatus.FAILED:
        raise ApiError(
            409, f"only failed deliveries can be replayed; this one is {delivery.status}"
        )
    replay_failed_delivery(db, delivery.id)
    db.commit()
    return DeliveryOut.of(delivery), 200


@api.route(
    "POST",
    "/deliveries/replay-failed",
    summary="Replay every failed delivery created since a time, optionally for one endpoint",
    body=ReplayFailed,
    responses={200: ReplayedOut, **WRITE_ERRORS, **_ONE},
)
def replay_failed(body: ReplayFailed) -> Reply:
    """Queue the failed deliveries again; returns how many."""
    db = db_session()
    if body.endpoint_id is not None:
        found(endpoint_service.get(db, body.endpoint_id), "delivery endpoint", body.endpoint_id)
    count = replay_failed_since(db, body.since, endpoint_id=body.endpoint_id)
    db.commit()
    return ReplayedOut(replayed=count), 200
