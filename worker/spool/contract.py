"""What a spool is: the contract a drainer reads through, and the stored report format.

:class:`EventSpool` has two kinds: the folder of ``spool.Spool`` (the embedded default)
and the Redis stream of ``stream_spool.StreamSpool``. Each hands out :class:`Claim` objects
that a drainer (``drain_loop.Drainer``) settles with done, release or bury, and both read
what they stored with :func:`read_report`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from notifier import AlertType, FailureKind, FailureReport, JobKind

__all__ = ["Claim", "ClaimT", "EventSpool", "SpoolUnavailable", "read_report"]


class SpoolUnavailable(Exception):
    """The spool's storage (its folder, or its Redis server) cannot be used right now."""


@dataclass
class Claim:
    """A spooled event this process holds until it calls done/release/bury.

    ``event`` is None for an entry that is not a readable failure report.
    """

    event: FailureReport | None


ClaimT = TypeVar("ClaimT", bound=Claim)


class EventSpool(ABC, Generic[ClaimT]):
    """Where events wait to be recorded: what ``emit`` writes to and a drainer reads from."""

    #: Where the events are, for log lines and the spool's platform alert.
    location: str
    #: Where dead events are, for log lines and the dead-letter alert.
    dead_location: str

    @abstractmethod
    def ensure(self) -> None:
        """Make the spool ready to take events; raise OSError/SpoolUnavailable if it cannot."""

    @abstractmethod
    def put(self, event: FailureReport) -> object:
        """Keep ``event`` durably; raise OSError/SpoolUnavailable if the spool cannot."""

    @abstractmethod
    def claim(self, limit: int) -> list[ClaimT]:
        """Take up to ``limit`` pending events that no other drainer holds."""

    @abstractmethod
    def done(self, claim: ClaimT) -> None:
        """The event is recorded (committed): forget it."""

    def done_all(self, claims: list[ClaimT]) -> None:
        """Each of ``claims`` is recorded; every one is let go of even if one fails."""
        error: Exception | None = None
        for claim in claims:
            try:
                self.done(claim)
            except Exception as exc:  # each claim must be let go of
                error = error or exc
        if error is not None:
            raise error

    @abstractmethod
    def release(self, claim: ClaimT) -> None:
        """Keep the event for a later attempt."""

    @abstractmethod
    def bury(self, claim: ClaimT) -> None:
        """Move an event that can never be recorded to the dead letters."""

    def burst(self) -> tuple[int, float, float] | None:
        """Pending events, the oldest's and the newest's age in seconds; None: not known.

        A drainer reads it to let a burst of failures finish arriving before it records
        them as one batch (``Drainer.QUIET_SECONDS``); a spool that cannot tell cheaply
        says None, and its events are recorded as soon as the drainer sees them.
        """
        return None

    @abstractmethod
    def stats(self) -> tuple[int, int, float]:
        """Pending events, dead events, and the oldest pending event's age in seconds."""

    @abstractmethod
    def dead_count(self) -> int:
        """How many events wait in the dead letters."""

    @abstractmethod
    def dead_listing(self, limit: int) -> list[str]:
        """One line for each of the first ``limit`` dead events (its name and when it died)."""

    @abstractmethod
    def retry_dead(self) -> int:
        """Move every dead event back to be recorded again; returns how many."""

    def close(self) -> None:
        """Let go of connections (nothing for a folder)."""


def read_report(text: str) -> FailureReport:
    """A spooled report, also from a spool written by a version before failure reports.

    Those files named a service method and its arguments; a worker upgraded with such
    files pending records them rather than burying them.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or "action" not in data:
        return FailureReport.from_document(data)  # parsed once
    action, params, alert = data["action"], dict(data["params"]), data.get("alert") or {}
    meta = dict(params.get("extra") or params.get("details") or params.get("metadata") or {})
    kinds = {"capacity": FailureKind.WORKER_LOST, "performance": FailureKind.TIME_LIMIT}
    kind = kinds.get(str(alert.get("alert_type")), FailureKind.EXCEPTION)
    if action == "notify_order_exception":
        kind = FailureKind.ORDER_EXCEPTION
    elif params.get("error_count"):
        kind = FailureKind.ROW_ERRORS
    jobs = {"notify_import_failure": JobKind.IMPORT, "notify_critical_error": JobKind.GENERIC}
    generic = action == "create_notification"
    return FailureReport(
        key=str(data["key"]),
        job=jobs.get(action, JobKind.GENERIC if generic else JobKind.SYNC),
        kind=kind,
        event=str(meta.get("event") or "failure"),
        task_name=str(meta.get("task_name") or "unknown"),
        task_id=str(meta.get("task_id") or ""),
        occurred_at=datetime.fromtimestamp(float(data["occurred_at"]), UTC),
        store_id=params.get("store_id"),
        store_name=str(params.get("store_name") or ""),
        job_id=str(params.get("job_id") or ""),
        attempts=int(meta.get("attempts") or 1),
        exception_class=meta.get("exception_class"),
        message=str(params.get("error_message") or params.get("message") or ""),
        arguments=meta.get("arguments"),
        traceback=str(meta.get("traceback") or ""),
        fingerprint=alert.get("fingerprint"),
        alert_type=AlertType(alert.get("alert_type") or AlertType.SYSTEM),
        error_count=params.get("error_count"),
        errors=meta.get("errors"),
        order_number=str(params.get("order_number") or ""),
        unmatched_products=list(params.get("unmatched_products") or []),
        notification_type=params.get("type") if generic else None,
        priority=params.get("priority") if generic else None,
        title=params.get("title") if generic else None,
    )
