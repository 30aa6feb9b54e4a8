"""Emails for one admin: the hourly cap, the digest, quiet hours folded into one message.

A storm stays one message: past ``emails_per_hour`` the rest wait for the admin's digest
or go out as one "and N more" summary; emails held by quiet hours go out together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import Database
from ..enums import DeliveryChannel, DeliveryStatus, DigestFrequency
from ..models import AdminUser, Delivery, DeliveryAttempt
from ..outbox import HOLD_DIGEST, HOLD_QUIET
from ..preferences.rules import DigestSchedule
from ..preferences.store import load_preferences
from ..types import utcnow
from .attempts import Outcome, record
from .senders import (
    Mail,
    quiet_content,
    send_mail,
    single_mail,
    summary_content,
    with_unsubscribe,
)
from .settings import DispatchReport, DispatchSettings

__all__ = ["dispatch_emails"]


def _emails_sent_last_hour(db: Session, user_id: int, now: datetime) -> tuple[int, datetime | None]:
    row = db.execute(
        select(func.count(DeliveryAttempt.id), func.min(DeliveryAttempt.attempted_at))
        .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .where(
            Delivery.channel == DeliveryChannel.EMAIL,
            Delivery.recipient_user_id == user_id,
            DeliveryAttempt.outcome == "succeeded",
            DeliveryAttempt.attempted_at > now - timedelta(hours=1),
        )
    ).one()
    return int(row[0] or 0), row[1]


def _to_digest(deliveries: Sequence[Delivery], schedule: DigestSchedule, zone: str) -> None:
    """Leave ``deliveries`` to the admin's next digest, which lists and closes them.

    Their next attempt is one period after the next digest: should no digest take them (the
    admin turned digests off meanwhile), the dispatcher still sends them, never drops them.
    """
    period = schedule.period(utcnow(), zone)
    assert period is not None
    fallback = period[1] + 2 * schedule.length
    for delivery in deliveries:
        delivery.claimed_until = None
        delivery.hold = HOLD_DIGEST
        delivery.next_attempt_at = fallback


def _fail_without_recipient(
    db: Session, deliveries: list[Delivery], report: DispatchReport, now: datetime
) -> None:
    """Record each delivery as failed: its admin is gone or inactive."""
    gone = Outcome("failed", error_class="NoRecipient", error="the admin is gone or inactive")
    for delivery in deliveries:
        report.add(record(db, delivery, gone, now))


def dispatch_emails(
    database: Database,
    settings: DispatchSettings,
    user_id: int,
    ids: list[int],
    report: DispatchReport,
) -> None:
    """Send one admin's claimed emails under the hourly cap, digest and quiet-hour rules."""
    now = utcnow()
    with database.session_scope(immediate=True) as db:
        user = db.get(AdminUser, user_id)
        deliveries = [d for d in (db.get(Delivery, i) for i in ids) if d is not None]
        if user is None or not user.is_active:
            _fail_without_recipient(db, deliveries, report, now)
            return
        preferences = load_preferences(db, [user_id]).get(user_id)
        digest = preferences.digest if preferences is not None else None
        has_digest = digest is not None and digest.frequency is not DigestFrequency.OFF
        sent, oldest = _emails_sent_last_hour(db, user_id, now)
        room = settings.emails_per_hour - sent
        if room <= 0:
            if has_digest:
                assert digest is not None and preferences is not None
                _to_digest(deliveries, digest, preferences.quiet.zone)
                report.add("digest", len(deliveries))
                return
            release = (oldest or now) + timedelta(hours=1)
            for delivery in deliveries:
                delivery.claimed_until = None
                delivery.next_attempt_at = release
            report.add("held", len(deliveries))
            return
        # Emails held by quiet hours and released together go out as one message.
        quiet = [d for d in deliveries if d.hold == HOLD_QUIET]
        groups: list[list[Delivery]] = [quiet] if len(quiet) > 1 else []
        groups += [[d] for d in deliveries if len(quiet) < 2 or d.hold != HOLD_QUIET]
        overflow: list[Delivery] = []
        if len(groups) <= room:
            single = groups
        elif has_digest:  # the whole room for single emails; the rest wait for the digest
            assert digest is not None and preferences is not None
            single = groups[:room]
            waiting = [d for group in groups[room:] for d in group]
            _to_digest(waiting, digest, preferences.quiet.zone)
            report.add("digest", len(waiting))
        else:  # the last place in the room is the summary of the rest
            single = groups[: room - 1]
            overflow = [d for group in groups[room - 1 :] for d in group]
        address = user.email
        work = [
            (single_mail(group[0], settings), [])
            if len(group) == 1
            else (
                Mail(group[0].id, quiet_content(group, settings)),
                [d.id for d in group[1:]],
            )
            for group in single
        ]
        if overflow:
            work.append(
                (
                    Mail(overflow[0].id, summary_content(overflow, settings)),
                    [d.id for d in overflow[1:]],
                )
            )
        by_id = {d.id: d for d in deliveries}
        work = [
            (
                with_unsubscribe(
                    db,
                    settings,
                    mail,
                    user_id,
                    [by_id[mail.delivery_id]] + [by_id[i] for i in folded],
                ),
                folded,
            )
            for mail, folded in work
        ]
    for mail, folded_ids in work:
        outcome = send_mail(settings, mail, address)
        with database.session_scope(immediate=True) as db:
            moment = utcnow()
            lead = db.get(Delivery, mail.delivery_id)
            if lead is None:
                continue
            report.add(record(db, lead, outcome, moment))
            for delivery in (d for d in (db.get(Delivery, i) for i in folded_ids) if d):
                # Folded into the lead's email: one attempt row, one send.
                delivery.claimed_until = None
                if outcome.result == "succeeded":
                    delivery.status = DeliveryStatus.SUCCEEDED
                    delivery.finished_at = moment
                    delivery.last_error = f"sent in the summary of delivery {lead.id}"
                    report.add("succeeded")
                else:
                    delivery.next_attempt_at = lead.next_attempt_at
                    report.add("retry")
