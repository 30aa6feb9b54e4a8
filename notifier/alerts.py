"""PlatformAlertService: platform alerts deduplicated by fingerprint, counted, and resolved."""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, update
from sqlalchemy.orm import Session

from . import outbox
from .config import configured_timezone
from .enums import AlertType, DeliveryEvent, Severity
from .errors import AlreadyResolvedError, ValidationError
from .keyset import (
    TOTAL_CAP,
    CappedCount,
    Page,
    SortKey,
    capped_count_query,
    keyset_page,
    page_bounds,
)
from .metrics import inc_on_commit
from .models import PlatformAlert
from .notifications import admin_notification_service
from .types import utcnow
from .upserts import upsert_alert
from .validation import FINGERPRINT_MAX, MESSAGE_MAX, OWNER_MAX, TITLE_MAX, Checker

#: Open alerts first, then the latest occurrence; the id breaks ties.
ALERT_ORDER = SortKey(
    (PlatformAlert.is_resolved, PlatformAlert.last_occurred_at, PlatformAlert.id),
    (False, True, True),
)

#: The longest snooze: a forgotten snooze must not hide a live problem for months.
SNOOZE_MAX = timedelta(days=30)


def snoozed_at(moment: datetime) -> ColumnElement[bool]:
    """Open alerts snoozed at ``moment`` (a snooze ends by itself: compared when read)."""
    return and_(
        PlatformAlert.is_resolved.is_(False),
        PlatformAlert.snoozed_until.is_not(None),
        PlatformAlert.snoozed_until > moment,
    )


def _not_snoozed_at(moment: datetime) -> ColumnElement[bool]:
    return or_(
        PlatformAlert.is_resolved.is_(True),
        PlatformAlert.snoozed_until.is_(None),
        PlatformAlert.snoozed_until <= moment,
    )


def default_fingerprint(alert_type: AlertType | str, title: str) -> str:
    """The fingerprint of an alert that was not given one: its type and title."""
    return f"{AlertType(alert_type).value}:{title}"[:FINGERPRINT_MAX]


class PlatformAlertService:
    """Platform alerts. Every method takes the session first and never commits."""

    def create_alert(self, db: Session, **fields: Unpack[AlertFields]) -> PlatformAlert:
        """Create a new open alert (fails on the unique index if one is open for the fingerprint).

        Use ``create_or_increment_alert`` for anything that may recur.
        """
        values = _validated(fields)
        now = utcnow()
        alert = PlatformAlert(**values, first_occurred_at=now, last_occurred_at=now)
        db.add(alert)
        db.flush()
        outbox.on_alert(db, alert, DeliveryEvent.ALERT_OPENED)
        return alert

    def create_or_increment_alert(
        self, db: Session, *, occurrences: int = 1, **fields: Unpack[AlertFields]
    ) -> tuple[PlatformAlert, bool]:
        """Count one more occurrence of the open alert with this fingerprint, or open one.

        Fields: ``alert_type``, ``severity``, ``title`` (required), ``fingerprint`` (default:
        type and title), ``description``, ``affected_stores``, ``affected_systems``,
        ``metadata``. Returns ``(alert, created)``. An existing open alert gets
        ``occurrence_count + 1`` (``+ occurrences``, for a caller that batched several
        occurrences into one call), a new ``last_occurred_at``, the higher of the two
        severities, the union of affected stores and systems, and the newest description;
        its title and metadata stay. This is a single ``INSERT ... ON CONFLICT DO UPDATE``
        against the partial unique index, so concurrent callers never lose a count nor open
        a second alert. A new alert for a fingerprint whose last alert was resolved records
        that alert's id as ``previous_alert_id`` in its metadata. An occurrence that raises
        the severity lifts a snooze and an acknowledgment and queues ``alert.escalated``;
        other occurrences of an open alert queue nothing.
        """
        values = _validated(fields)
        if isinstance(occurrences, bool) or not isinstance(occurrences, int) or occurrences < 1:
            raise ValidationError({"occurrences": "must be a positive integer"})
        now = utcnow()
        values.update(
            occurrence_count=occurrences,
            first_occurred_at=now,
            last_occurred_at=now,
            is_resolved=False,
            created_at=now,
        )
        statement = upsert_alert(db.get_bind().dialect.name)
        alert: PlatformAlert = db.scalars(
            statement, values, execution_options={"populate_existing": True}
        ).one()
        # An existing alert already had at least one occurrence before these.
        created = alert.occurrence_count == occurrences
        if created:
            regressed = self._link_previous(db, alert)
            event = DeliveryEvent.ALERT_REGRESSED if regressed else DeliveryEvent.ALERT_OPENED
            outbox.on_alert(db, alert, event)
        elif alert.escalated_at == now:
            # This occurrence raised the severity: the upsert lifted any snooze and
            # acknowledgment, and the recipients hear of it.
            outbox.on_alert(db, alert, DeliveryEvent.ALERT_ESCALATED)
        labels = (alert.alert_type.value, alert.severity.value)
        if created:
            inc_on_commit(db, "notifier_alerts_opened_total", labels)
        else:
            inc_on_commit(db, "notifier_alerts_incremented_total", labels, occurrences)
        return alert, created

    def _link_previous(self, db: Session, alert: PlatformAlert) -> bool:
        """Point a newly opened alert at the last resolved alert with the same fingerprint.

        Returns whether there was one: the new alert is then a regression.
        """
        previous = db.execute(
            select(PlatformAlert.id, PlatformAlert.occurrence_count)
            .where(PlatformAlert.fingerprint == alert.fingerprint, PlatformAlert.is_resolved)
            .order_by(PlatformAlert.resolved_at.desc(), PlatformAlert.id.desc())
            .limit(1)
        ).first()
        if previous is not None:
            alert.alert_metadata = {
                **alert.alert_metadata,
                "previous_alert_id": previous.id,
                "previous_occurrence_count": previous.occurrence_count,
            }
            db.flush()
        return previous is not None

    def page_alerts(
        self,
        db: Session,
        *,
        alert_type: AlertType | str | None = None,
        severity: Severity | str | None = None,
        is_resolved: bool | None = None,
        snoozed: bool = False,
        acknowledged: bool | None = None,
        cursor: str | None = None,
        skip: int = 0,
        limit: int = 50,
        owner: str | None = None,
    ) -> Page[PlatformAlert]:
        """A page of alerts in list order after ``cursor`` (or ``skip`` in); total capped.

        Snoozed alerts are left out, or only they are listed with ``snoozed=True``; ``owner``
        lists only that owner's alerts.
        """
        now = utcnow()
        conditions = self._filters(alert_type, severity, is_resolved, None, acknowledged)
        if owner is not None:
            conditions.append(PlatformAlert.owner == owner)
        snooze = snoozed_at(now) if snoozed else _not_snoozed_at(now)
        skip, limit = page_bounds(skip, limit)

        def unsnoozed_total() -> CappedCount:
            # The unsnoozed ones are all of them less the snoozed ones. Counting both reads
            # index entries only (few alerts are snoozed: ix_platform_alerts_snoozed), where
            # testing "not snoozed" on each of 10,001 rows cost as much again as the count.
            # One statement, so both counts see the same snapshot.
            snoozed_now = (
                select(func.count())
                .select_from(PlatformAlert)
                .where(*conditions, snoozed_at(now))
                .scalar_subquery()
            )
            every = (
                select(literal(1))
                .select_from(PlatformAlert)
                .where(*conditions)
                .limit(TOTAL_CAP + 1 + snoozed_now)
                .subquery()
            )
            snoozed, counted = db.execute(
                select(snoozed_now, select(func.count()).select_from(every).scalar_subquery())
            ).one()
            return CappedCount.of(int(counted or 0) - int(snoozed or 0))

        return keyset_page(
            db,
            PlatformAlert,
            [*conditions, snooze],
            ALERT_ORDER,
            cursor=cursor,
            skip=skip,
            limit=limit,
            total=None if snoozed else unsnoozed_total,
        )

    def _filters(
        self,
        alert_type: AlertType | str | None,
        severity: Severity | str | None,
        is_resolved: bool | None,
        snoozed: bool | None = False,
        acknowledged: bool | None = None,
    ) -> list[Any]:
        """The conditions of a list's filters; ``snoozed`` None leaves snoozes out of it."""
        check = Checker()
        conditions: list[Any] = []
        if alert_type is not None:
            conditions.append(
                PlatformAlert.alert_type == check.enum("alert_type", alert_type, AlertType)
            )
        if severity is not None:
            conditions.append(PlatformAlert.severity == check.enum("severity", severity, Severity))
        if is_resolved is not None:
            conditions.append(PlatformAlert.is_resolved.is_(bool(is_resolved)))
        if snoozed is not None:
            now = utcnow()
            conditions.append(snoozed_at(now) if snoozed else _not_snoozed_at(now))
        if acknowledged is not None:
            column = PlatformAlert.acknowledged_at
            conditions.append(column.is_not(None) if acknowledged else column.is_(None))
        check.done()
        return conditions

    def get_alert(self, db: Session, alert_id: int) -> PlatformAlert | None:
        """One alert by id, or None."""
        return db.get(PlatformAlert, alert_id)

    def resolve_alert(
        self, db: Session, alert_id: int, *, user_id: int | None, resolution_notes: str
    ) -> PlatformAlert | None:
        """Resolve an open alert with notes; None for an unknown id.

        Raises AlreadyResolvedError if it was resolved before (also when another admin won
        a race to resolve it), so the first resolver's notes are never overwritten.
        """
        check = Checker()
        notes = check.text("resolution_notes", resolution_notes, max_length=MESSAGE_MAX)
        check.done()
        result = db.execute(
            update(PlatformAlert)
            .where(PlatformAlert.id == alert_id, PlatformAlert.is_resolved.is_(False))
            .values(
                is_resolved=True,
                resolved_at=utcnow(),
                resolved_by_user_id=user_id,
                resolution_notes=notes,
            )
            .execution_options(synchronize_session=False)
        )
        alert = db.get(PlatformAlert, alert_id, populate_existing=True)
        if alert is None:
            return None
        if not getattr(result, "rowcount", 0):
            raise AlreadyResolvedError(alert_id)
        labels = (alert.alert_type.value, alert.severity.value)
        inc_on_commit(db, "notifier_alerts_resolved_total", labels)
        outbox.on_alert(db, alert, DeliveryEvent.ALERT_RESOLVED)
        return alert

    def acknowledge_alert(
        self, db: Session, alert_id: int, *, user_id: int | None, via: str | None = None
    ) -> PlatformAlert | None:
        """Mark an open alert as taken on by ``user_id``; None for an unknown id.

        Idempotent: acknowledging it again keeps the first admin, time and ``via`` (where
        it came from: email, slack, teams or web). Reminders stop until it is
        unacknowledged or an occurrence raises its severity. The first acknowledgment
        queues ``alert.acknowledged`` (PagerDuty and webhook endpoints). Raises
        AlreadyResolvedError for a resolved alert.
        """
        return self._change_open(
            db,
            alert_id,
            {
                "acknowledged_at": utcnow(),
                "acknowledged_by_user_id": user_id,
                "acknowledged_via": via,
            },
            PlatformAlert.acknowledged_at.is_(None),
            event=DeliveryEvent.ALERT_ACKNOWLEDGED,
        )

    def unacknowledge_alert(self, db: Session, alert_id: int) -> PlatformAlert | None:
        """Withdraw an open alert's acknowledgment (reminders resume); None for an unknown id."""
        return self._change_open(
            db,
            alert_id,
            {"acknowledged_at": None, "acknowledged_by_user_id": None, "acknowledged_via": None},
        )

    def snooze_alert(
        self, db: Session, alert_id: int, *, until: datetime, now: datetime | None = None
    ) -> PlatformAlert | None:
        """Hide an open alert and keep it silent until ``until``; None for an unknown id.

        ``until`` must be aware, in the future and at most ``SNOOZE_MAX`` away, else a
        ValidationError. Its occurrences still count; one that raises the severity ends the
        snooze. Snoozing again moves the time. Raises AlreadyResolvedError when resolved.
        """
        now = now or utcnow()
        if not isinstance(until, datetime) or until.tzinfo is None:
            raise ValidationError({"until": "must be a date and time with a time zone"})
        if until <= now:
            raise ValidationError({"until": "must be in the future"})
        if until - now > SNOOZE_MAX:
            raise ValidationError({"until": f"must be at most {SNOOZE_MAX.days} days away"})
        return self._change_open(db, alert_id, {"snoozed_until": until})

    def unsnooze_alert(self, db: Session, alert_id: int) -> PlatformAlert | None:
        """End an open alert's snooze now; None for an unknown id."""
        return self._change_open(db, alert_id, {"snoozed_until": None})

    def _change_open(
        self,
        db: Session,
        alert_id: int,
        values: dict[str, Any],
        *only_if: ColumnElement[bool],
        event: DeliveryEvent | None = None,
    ) -> PlatformAlert | None:
        # One UPDATE guarded by "still open": a concurrent resolve wins cleanly.
        changed = db.execute(
            update(PlatformAlert)
            .where(PlatformAlert.id == alert_id, PlatformAlert.is_resolved.is_(False), *only_if)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        alert = db.get(PlatformAlert, alert_id, populate_existing=True)
        if alert is not None and alert.is_resolved:
            raise AlreadyResolvedError(alert_id)
        if alert is not None and event is not None and getattr(changed, "rowcount", None):
            outbox.on_alert(db, alert, event)  # only the change itself, never a repeat
        return alert

    def get_statistics(
        self, db: Session, *, tz: tzinfo | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Counts for the statistics cards and the alert breakdowns.

        Keys: unread_notifications (exact up to ``keyset.UNREAD_CAP``, then the cap with
        unread_notifications_exact False; kept here, where hosts read it since the first
        release), active_alerts, critical_alerts (active and critical; a snoozed alert is not
        active until its snooze ends), snoozed_alerts, acknowledged_alerts (active ones),
        resolved_today (since midnight in ``NOTIFIER_TIMEZONE``), total_alerts (exact up to
        ``keyset.TOTAL_CAP``, then the cap with total_alerts_exact False),
        by_severity / by_type over active alerts with every enum value present, and
        held_back_alerts (open alerts an open root cause holds back).
        """
        zone = tz or configured_timezone()
        now = now or utcnow()
        local_now = now.astimezone(zone)
        midnight = datetime.combine(local_now.date(), time.min, tzinfo=zone)

        by_severity = dict.fromkeys((s.value for s in Severity), 0)
        by_type = dict.fromkeys((t.value for t in AlertType), 0)
        # One grouped pass over the open alerts, read from ix_platform_alerts_counts alone
        # on PostgreSQL (it carries snoozed_until and acknowledged_at). Grouped by the
        # index's own columns, in its order; snoozed and acknowledged ones are counted with
        # FILTER, not grouped, so the pass sorts and hashes nothing. (One grouped pass over
        # every alert for the total as well was slower: it compares three strings per row
        # where count(*) compares none.)
        snoozed_now = snoozed_at(now)
        rows = db.execute(
            select(
                PlatformAlert.severity,
                PlatformAlert.alert_type,
                func.count(),
                func.count().filter(snoozed_now),
                func.count().filter(PlatformAlert.acknowledged_at.is_not(None), ~snoozed_now),
            )
            .where(PlatformAlert.is_resolved.is_(False))
            .group_by(PlatformAlert.is_resolved, PlatformAlert.severity, PlatformAlert.alert_type)
        ).all()
        snoozed = acknowledged = 0
        for severity, alert_type, count, is_snoozed, is_acknowledged in rows:
            by_severity[Severity(severity).value] += count - is_snoozed
            by_type[AlertType(alert_type).value] += count - is_snoozed
            snoozed += is_snoozed
            acknowledged += is_acknowledged

        # One round trip for both. The total is capped like the lists' totals: an exact
        # count reads every alert's index entry (100,000 in bench_api.py).
        total, resolved_today, held_back = db.execute(
            select(
                capped_count_query(PlatformAlert, []).scalar_subquery(),
                select(func.count())
                .select_from(PlatformAlert)
                .where(PlatformAlert.is_resolved, PlatformAlert.resolved_at >= midnight)
                .scalar_subquery(),
                select(func.count())  # few: read from ix_..._held_back_by_id
                .select_from(PlatformAlert)
                .where(PlatformAlert.held_back_by_id.is_not(None), ~PlatformAlert.is_resolved)
                .scalar_subquery(),
            )
        ).one()
        total_alerts = CappedCount.of(total)
        unread = admin_notification_service.get_unread_count(db)
        return {
            "unread_notifications": unread.value,
            "unread_notifications_exact": unread.exact,
            "active_alerts": sum(by_severity.values()),
            "critical_alerts": by_severity[Severity.CRITICAL.value],
            "snoozed_alerts": snoozed,
            "acknowledged_alerts": acknowledged,
            "resolved_today": int(resolved_today),
            "total_alerts": total_alerts.value,
            "total_alerts_exact": total_alerts.exact,
            "by_severity": by_severity,
            "by_type": by_type,
            "held_back_alerts": int(held_back),
        }


class AlertFields(TypedDict, total=False):
    """The fields an alert is opened or counted with (``create_or_increment_alert``)."""

    alert_type: Required[AlertType | str]
    severity: Required[Severity | str]
    title: Required[str]
    fingerprint: str | None
    description: str | None
    affected_stores: list[int] | None
    affected_systems: list[str] | None
    metadata: dict[str, Any] | None
    owner: str | None
    runbook: str | None
    #: A root cause: the scope of the symptoms it holds back (see notifier.health).
    explains: str | None
    #: The task whose next success resolves the alert (with its store, if it has one).
    recovery_task: str | None


def _validated(fields: AlertFields) -> dict[str, Any]:
    """The row values for ``fields``, or a ValidationError naming every bad field."""
    check = Checker()
    values: dict[str, Any] = {
        "alert_type": check.enum("alert_type", fields.get("alert_type"), AlertType),
        "severity": check.enum("severity", fields.get("severity"), Severity),
        "title": check.text("title", fields.get("title"), max_length=TITLE_MAX),
        "description": check.text(
            "description", fields.get("description"), max_length=MESSAGE_MAX, required=False
        ),
        "affected_stores": check.int_list("affected_stores", fields.get("affected_stores")),
        "affected_systems": check.name_list("affected_systems", fields.get("affected_systems")),
        "alert_metadata": check.metadata("metadata", fields.get("metadata")),
        "fingerprint": check.text(
            "fingerprint", fields.get("fingerprint"), max_length=FINGERPRINT_MAX, required=False
        ),
        "owner": check.text("owner", fields.get("owner"), max_length=OWNER_MAX, required=False),
        "runbook": check.runbook("runbook", fields.get("runbook")),
        "explains": check.text(
            "explains", fields.get("explains"), max_length=FINGERPRINT_MAX, required=False
        ),
        "recovery_task": check.text(
            "recovery_task", fields.get("recovery_task"), max_length=200, required=False
        ),
    }
    check.done()
    if values["fingerprint"] is None:
        values["fingerprint"] = default_fingerprint(values["alert_type"], values["title"])
    return values


platform_alert_service = PlatformAlertService()

__all__ = [
    "SNOOZE_MAX",
    "AlertFields",
    "PlatformAlertService",
    "default_fingerprint",
    "platform_alert_service",
    "snoozed_at",
]
