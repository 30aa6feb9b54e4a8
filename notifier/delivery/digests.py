"""Digest emails: per admin, hourly or daily, what arrived since their last digest.

``run_digests`` is what celery beat runs every minute (``notifier.digests``). For each admin
whose digest period has begun and who is not inside quiet hours, it first *claims* the
period: an ``INSERT ... ON CONFLICT DO NOTHING`` of (admin, period key) under a unique
index, committed before anything is sent. A second tick, or a second beat running at the
same moment, finds the period taken and sends nothing: exactly one digest per admin and
period (at most once; a digest whose send failed is not retried, its content rolls into the
next one because "since the last digest" counts only digests that went out).

What one digest holds: counts of notifications by type and priority, new alerts by type and
severity, the open alerts with the most occurrences, the emails the hourly cap left to the
digest, and links into the page, all limited to what the admin has not turned off. Nothing to
report: no email. Counts for admins who share a window are read once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..db import Database
from ..enums import DeliveryChannel, DeliveryStatus, DigestFrequency
from ..models import AdminNotification, AdminPreferences, AdminUser, Delivery, Digest, PlatformAlert
from ..outbox import HOLD_DIGEST
from ..preferences.rules import Channel, Mode, Preferences, category_of, level_meets
from ..preferences.store import preferences_of
from ..types import utcnow
from . import unsubscribe
from .dispatch import DispatchSettings, unsubscribe_url
from .mail import MailContent, compose, list_id, send_many

__all__ = ["TOP_ALERTS", "DigestReport", "run_digests"]

log = logging.getLogger(__name__)

#: How many of the open alerts with the most occurrences a digest lists.
TOP_ALERTS = 5
_DONE = ("sent", "empty")


@dataclass(slots=True)
class DigestReport:
    """What one run did: digests sent, empty periods, periods already taken, and so on."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, outcome: str) -> None:
        """Count one admin's outcome."""
        self.counts[outcome] += 1

    @property
    def total(self) -> int:
        """How many admins this run did something for."""
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class _Window:
    """What arrived in (since, until], read once for every admin sharing the window."""

    notifications: list[tuple[str, str, int]]  # type, priority, count
    new_alerts: list[tuple[str, str, int]]  # alert type, severity, count


@dataclass(frozen=True, slots=True)
class _Due:
    user_id: int
    email: str
    preferences: Preferences
    key: str
    since: datetime


def _window(db: Session, since: datetime, until: datetime) -> _Window:
    notifications = db.execute(
        select(AdminNotification.type, AdminNotification.priority, func.count())
        .where(AdminNotification.created_at > since, AdminNotification.created_at <= until)
        .group_by(AdminNotification.type, AdminNotification.priority)
    ).all()
    new_alerts = db.execute(
        select(PlatformAlert.alert_type, PlatformAlert.severity, func.count())
        .where(PlatformAlert.first_occurred_at > since, PlatformAlert.first_occurred_at <= until)
        .group_by(PlatformAlert.alert_type, PlatformAlert.severity)
    ).all()
    return _Window(
        [(str(t), str(p), int(n)) for t, p, n in notifications],
        [(str(t), str(s), int(n)) for t, s, n in new_alerts],
    )


def _top_open_alerts(db: Session) -> list[PlatformAlert]:
    # More than TOP_ALERTS: each admin's turned-off types are taken out afterwards.
    rows = db.scalars(
        select(PlatformAlert)
        .where(PlatformAlert.is_resolved.is_(False))
        .order_by(PlatformAlert.occurrence_count.desc(), PlatformAlert.id.desc())
        .limit(TOP_ALERTS * 10)
    )
    alerts = list(rows)
    db.expunge_all()
    return alerts


def _wanted(preferences: Preferences, kind: str, type_: str, level: str) -> bool:
    rule = preferences.rule(Channel.EMAIL, category_of(kind, type_))
    return rule.mode is not Mode.OFF and level_meets(kind, level, rule.min_level)


def _due(db: Session, now: datetime) -> list[_Due]:
    rows = db.execute(
        select(AdminPreferences, AdminUser.email)
        .join(AdminUser, AdminUser.id == AdminPreferences.user_id)
        .where(AdminUser.is_active, AdminPreferences.digest_frequency != DigestFrequency.OFF)
    ).all()
    if not rows:
        return []
    last: dict[int, datetime] = {
        user_id: until
        for user_id, until in db.execute(
            select(Digest.user_id, func.max(Digest.covered_until))
            .where(Digest.status.in_(_DONE))
            .group_by(Digest.user_id)
        )
    }
    taken = set(
        db.execute(
            select(Digest.user_id, Digest.period_key).where(
                Digest.created_at > now - timedelta(days=2)
            )
        ).all()
    )
    due = []
    for row, email in rows:
        preferences = preferences_of(row)
        if not preferences.channel_on(Channel.EMAIL):
            continue
        period = preferences.digest.period(now, preferences.quiet.zone)
        if period is None or (row.user_id, period[0]) in taken:
            continue
        if preferences.quiet.held_until(now) is not None:
            continue  # sent at the first tick after the quiet window
        since = last.get(row.user_id) or period[1] - preferences.digest.length
        due.append(_Due(row.user_id, email, preferences, period[0], since))
    return due


def _content(
    due: _Due,
    window: _Window,
    top: list[PlatformAlert],
    waiting: list[dict[str, Any]],
    settings: DispatchSettings,
) -> tuple[MailContent, int] | None:
    prefs = due.preferences
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for type_, priority, n in window.notifications:
        if _wanted(prefs, "notification", type_, priority):
            counts[type_][priority] = n
    alerts: dict[str, dict[str, int]] = defaultdict(dict)
    for type_, severity, n in window.new_alerts:
        if _wanted(prefs, "alert", type_, severity):
            alerts[type_][severity] = n
    notification_total = sum(sum(by.values()) for by in counts.values())
    alert_total = sum(sum(by.values()) for by in alerts.values())
    if not notification_total and not alert_total and not waiting:
        return None
    page = settings.base_url.rstrip("/") + settings.pages_path if settings.base_url else None
    facts = [
        (f"{type_} notifications", ", ".join(f"{n} {level}" for level, n in sorted(by.items())))
        for type_, by in sorted(counts.items())
    ] + [
        (f"new {type_} alerts", ", ".join(f"{n} {level}" for level, n in sorted(by.items())))
        for type_, by in sorted(alerts.items())
    ]
    open_alerts = [a for a in top if _wanted(prefs, "alert", str(a.alert_type), str(a.severity))][
        :TOP_ALERTS
    ]
    paragraphs = [
        f"Since {due.since:%Y-%m-%d %H:%M} UTC: {notification_total} notifications and "
        f"{alert_total} new alerts."
    ]
    if open_alerts:
        paragraphs.append(
            "Open alerts with the most occurrences:\n"
            + "\n".join(
                f"[{str(a.severity).upper()}] {a.alert_type}: {a.title} "
                f"({a.occurrence_count} occurrences)"
                for a in open_alerts
            )
            + (f"\nSee them all: {page}?tab=alerts" if page else "")
        )
    if waiting:
        paragraphs.append(
            f"{len(waiting)} emails over this hour's limit, held for this digest:\n"
            + "\n".join(
                f"[{str(p.get('priority') or p.get('severity') or '').upper()}] "
                f"{p.get('type') or p.get('alert_type')}: {p.get('title')}"
                for p in waiting[:20]
            )
            + (f"\n... and {len(waiting) - 20} more" if len(waiting) > 20 else "")
        )
    label = "daily" if prefs.digest.frequency is DigestFrequency.DAILY else "hourly"
    subject = f"Your {label} digest: {notification_total} notifications, {alert_total} alerts"
    return MailContent(subject, paragraphs, facts, page), notification_total + alert_total


def _claim(database: Database, due: list[_Due], now: datetime) -> dict[int, int]:
    """Claim each admin's period; returns user id -> digest id for the claims this run won.

    One multi-row INSERT ... ON CONFLICT DO NOTHING for the chunk: the rows another run
    inserted first are skipped, and RETURNING names the ones this run won.
    """
    rows = [
        {
            "user_id": one.user_id,
            "period_key": one.key,
            "covered_from": one.since,
            "covered_until": now,
            "status": "claimed",
            "item_count": 0,
            "created_at": now,
        }
        for one in due
    ]
    dialect = database.engine.dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(Digest)
    claim = (
        statement.values(rows)
        .on_conflict_do_nothing(index_elements=["user_id", "period_key"])
        .returning(Digest.user_id, Digest.id)
    )
    with database.session_scope(immediate=True) as db:
        # The links' key is made here, in the write transaction, if it is not there yet:
        # the render step that signs the links then only reads (on SQLite a read
        # transaction cannot take the write lock while another run holds it).
        unsubscribe.signing_key(db)
        return {int(user_id): int(digest_id) for user_id, digest_id in db.execute(claim)}


def _waiting(db: Session, user_ids: list[int]) -> dict[int, list[Delivery]]:
    found: dict[int, list[Delivery]] = defaultdict(list)
    rows = db.scalars(
        select(Delivery)
        .where(
            Delivery.recipient_user_id.in_(user_ids),
            Delivery.channel == DeliveryChannel.EMAIL,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.hold == HOLD_DIGEST,
        )
        .order_by(Delivery.id)
    )
    for delivery in rows:
        assert delivery.recipient_user_id is not None
        found[delivery.recipient_user_id].append(delivery)
    return found


#: Admins handled per transaction and SMTP connection: memory stays flat with the team's size.
CHUNK = 200


def run_digests(
    database: Database, settings: DispatchSettings, *, now: datetime | None = None
) -> DigestReport:
    """Send every digest whose period has begun (safe to run twice, or in two beats at once)."""
    now = now or utcnow()
    report = DigestReport()
    if settings.smtp is None:  # nothing could go out: claim nothing, so nothing is lost
        return report
    with database.session_scope() as db:
        due = _due(db, now)
        top = _top_open_alerts(db) if due else []
    windows: dict[datetime, _Window] = {}
    for start in range(0, len(due), CHUNK):
        _run_chunk(database, settings, due[start : start + CHUNK], top, windows, now, report)
    return report


def _run_chunk(
    database: Database,
    settings: DispatchSettings,
    chunk: list[_Due],
    top: list[PlatformAlert],
    windows: dict[datetime, _Window],
    now: datetime,
    report: DigestReport,
) -> None:
    assert settings.smtp is not None
    won = _claim(database, chunk, now)  # committed before anything is sent
    for _ in range(len(chunk) - len(won)):
        report.add("taken")
    if not won:
        return
    claimed = [one for one in chunk if one.user_id in won]
    outgoing: list[tuple[_Due, EmailMessage, int, list[int]]] = []
    empty: list[int] = []
    with database.session_scope() as db:
        waiting = _waiting(db, [one.user_id for one in claimed])
        for one in claimed:
            if one.since not in windows:
                windows[one.since] = _window(db, one.since, now)
            held = waiting.get(one.user_id, [])
            built = _content(one, windows[one.since], top, [d.payload for d in held], settings)
            if built is None:
                empty.append(won[one.user_id])
                continue
            content, items = built
            token = unsubscribe.sign(db, one.user_id, unsubscribe.DIGEST)
            content = replace(content, unsubscribe_url=unsubscribe_url(settings, token))
            message = compose(
                content,
                sender=settings.smtp.sender,
                recipients=[one.email],
                list_id=list_id(settings.smtp),
            )
            outgoing.append((one, message, items, [d.id for d in held]))
    errors = send_many(settings.smtp, [message for _, message, _, _ in outgoing])
    sent_at = utcnow()
    outcomes: list[dict[str, Any]] = [
        {"id": digest_id, "status": "empty", "error": None, "item_count": 0, "sent_at": None}
        for digest_id in empty
    ]
    closed: list[dict[str, Any]] = []
    for (one, _, items, held_ids), error in zip(outgoing, errors, strict=True):
        digest_id = won[one.user_id]
        if error is not None:
            log.warning("notifier: digest %d could not be sent: %s", digest_id, error)
        outcomes.append(
            {
                "id": digest_id,
                "status": "failed" if error else "sent",
                "error": error,
                "item_count": items,
                "sent_at": None if error else sent_at,
            }
        )
        if error is None:
            closed += [
                {
                    "id": delivery_id,
                    "status": DeliveryStatus.SUCCEEDED,
                    "finished_at": sent_at,
                    "last_error": f"sent in digest {digest_id}",
                }
                for delivery_id in held_ids
            ]
    with database.session_scope(immediate=True) as db:
        db.execute(update(Digest), outcomes)  # by primary key, one round trip per batch
        if closed:
            db.execute(update(Delivery), closed)
    for outcome in outcomes:
        report.add(str(outcome["status"]))
