"""The delivery log: deliveries, their attempts and each endpoint's backlog.

The delivery log: deliveries by status, endpoint and event, their attempts, and each
endpoint's backlog (what the Channels and Delivery log pages and the API read).

Writing is the engine's: rows come from ``outbox``, attempts from ``dispatch``, and a replay
is ``dispatch.replay``. Every method takes the caller's session and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..enums import DeliveryEvent, DeliveryStatus
from ..keyset import page_bounds
from ..models import Delivery, DeliveryAttempt
from ..validation import Checker

__all__ = ["Backlog", "DeliveryLogService", "delivery_log"]


@dataclass(frozen=True, slots=True)
class Backlog:
    """How many of an endpoint's deliveries wait for an attempt, and how many gave up."""

    pending: int = 0
    failed: int = 0


class DeliveryLogService:
    """Reads of the outbox for admins."""

    def page(
        self,
        db: Session,
        *,
        status: DeliveryStatus | str | None = None,
        endpoint_id: int | None = None,
        event_type: DeliveryEvent | str | None = None,
        skip: int = 0,
        limit: int = 50,
    ) -> tuple[list[Delivery], int]:
        """A page of deliveries, newest first, and the total matching the filters."""
        check = Checker()
        conditions = []
        if status is not None:
            conditions.append(Delivery.status == check.enum("status", status, DeliveryStatus))
        if endpoint_id is not None:
            conditions.append(
                Delivery.endpoint_id == check.optional_int("endpoint_id", endpoint_id)
            )
        if event_type is not None:
            conditions.append(
                Delivery.event_type == check.enum("event_type", event_type, DeliveryEvent)
            )
        check.done()
        skip, limit = page_bounds(skip, limit)
        total = db.scalar(select(func.count()).select_from(Delivery).where(*conditions))
        items = db.scalars(
            select(Delivery)
            .where(*conditions)
            .order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .offset(skip)
            .limit(limit)
        ).all()
        return list(items), int(total or 0)

    def get(self, db: Session, delivery_id: int) -> Delivery | None:
        """One delivery, or None."""
        return db.get(Delivery, delivery_id)

    def attempts(
        self, db: Session, delivery_ids: Sequence[int]
    ) -> dict[int, list[DeliveryAttempt]]:
        """The attempts of each delivery, oldest first (a delivery without any maps to [])."""
        found: dict[int, list[DeliveryAttempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return found
        rows = db.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(delivery_ids)))
            .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
        )
        for attempt in rows:
            found[attempt.delivery_id].append(attempt)
        return found

    def backlog(self, db: Session) -> dict[int, Backlog]:
        """Pending and failed deliveries per endpoint (endpoints with neither are absent)."""
        counts: dict[int, dict[DeliveryStatus, int]] = defaultdict(dict)
        rows = db.execute(
            select(Delivery.endpoint_id, Delivery.status, func.count())
            .where(
                Delivery.endpoint_id.is_not(None),
                Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            )
            .group_by(Delivery.endpoint_id, Delivery.status)
        ).tuples()
        for endpoint_id, status, count in rows:
            if endpoint_id is not None:
                counts[endpoint_id][DeliveryStatus(status)] = int(count)
        return {
            endpoint_id: Backlog(
                pending=by_status.get(DeliveryStatus.PENDING, 0),
                failed=by_status.get(DeliveryStatus.FAILED, 0),
            )
            for endpoint_id, by_status in counts.items()
        }


delivery_log = DeliveryLogService()
