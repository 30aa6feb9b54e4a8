"""The dispatcher: claims due outbox rows, sends them, and records every attempt.

A claim is one ``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) RETURNING id``
that stamps ``claimed_until``: concurrent dispatchers never take the same row, and a
dispatcher killed mid-send leaves a claim that lapses, so the row is sent again with the same
``webhook-id`` (at least once; receivers deduplicate on the id). Nothing is sent inside a
transaction. Retry times live in ``next_attempt_at``, never in long Celery countdowns (which
outlive a Redis visibility timeout and run twice).
"""

from __future__ import annotations

import json
import logging
import os
import random
import smtplib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from sqlalchemy import Insert, Table, Update, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from . import egress, metrics, unsubscribe
from .chat import ChatMessage, slack_payload, teams_payload
from .config import flag
from .db import Database
from .enums import DeliveryChannel, DeliveryEvent, DeliveryStatus, NotificationType, Priority
from .errors import ConfigurationError, DeliveryRefusedError
from .mail import MailContent, SmtpSettings, alert_root_message_id, compose, list_id, send
from .models import AdminUser, Delivery, DeliveryAttempt, DeliveryEndpoint
from .notifications import admin_notification_service
from .outbox import HOLD_DIGEST, HOLD_QUIET, ensure_default_email_endpoint, mark_queued
from .preference_store import load_preferences
from .preferences import DigestFrequency, DigestSchedule, Event, is_required
from .types import utcnow
from .webhooks import envelope, signed_headers

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "DispatchReport",
    "DispatchSettings",
    "DispatcherThread",
    "dispatch_batches",
    "dispatch_due",
    "replay",
    "replay_failed_since",
    "retry_delay",
    "run_dispatcher",
    "unsubscribe_url",
]

log = logging.getLogger(__name__)

#: Seconds before attempt 1, 2, ...: about 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_DELAYS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS)
JITTER = 0.2
#: Longest a Retry-After may push an attempt back.
RETRY_AFTER_MAX = 36000
CLAIM_LEASE = timedelta(minutes=2)
DISABLE_AFTER = timedelta(days=5)
#: An endpoint's ``last_success_at`` is written at most this often (one UPDATE per send of
#: the same row serialised every concurrent record behind its row lock).
SUCCESS_STAMP_EVERY = timedelta(seconds=1)
_RETRY_STATUSES = {408, 429}

Result = Literal["succeeded", "retry", "failed", "gone"]


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """What the dispatcher needs to know that the rows do not say."""

    allow_private: bool = False
    smtp: SmtpSettings | None = None
    base_url: str | None = None  # e.g. "https://admin.shop.example", for links
    pages_path: str = "/admin/notifications"
    unsubscribe_path: str = "/admin/unsubscribe"
    emails_per_hour: int = 20
    slack_interval: float = 1.0
    batch_size: int = 20
    #: How long a claim holds a row; a dispatcher killed mid-send is replaced after this.
    claim_lease: timedelta = CLAIM_LEASE
    #: Sends whose attempt is not recorded yet, at most: the database round trips of one
    #: send overlap the next sends, and attempts waiting are recorded together. A crash or
    #: a database cut re-sends at most this many deliveries (same webhook-id); 1 records
    #: each send before the next.
    in_flight: int = 16
    #: Threads sending at once, each to its own URLs (one URL's deliveries go in order).
    senders: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DispatchSettings:
        """Read the delivery settings (``NOTIFIER_SMTP_URL`` and friends) from the environment.

        | variable                        | meaning                                          |
        |---------------------------------|--------------------------------------------------|
        | NOTIFIER_SMTP_URL               | smtp://, smtp+starttls:// or smtps://user@host:port |
        | NOTIFIER_SMTP_PASSWORD          | the SMTP password (kept out of the URL)          |
        | NOTIFIER_MAIL_FROM              | the From address (needed with NOTIFIER_SMTP_URL) |
        | NOTIFIER_PUBLIC_URL             | the admin's base URL, for links in messages      |
        | NOTIFIER_EMAILS_PER_HOUR        | per admin; the rest go out as one summary (20)   |
        | NOTIFIER_DELIVERY_ALLOW_PRIVATE | true: allow http and private addresses (dev only) |
        """
        env = os.environ if environ is None else environ
        smtp_url = (env.get("NOTIFIER_SMTP_URL") or "").strip()
        smtp = None
        if smtp_url:
            sender = (env.get("NOTIFIER_MAIL_FROM") or "").strip()
            if not sender:
                raise ConfigurationError(
                    "NOTIFIER_SMTP_URL is set but NOTIFIER_MAIL_FROM is not; "
                    "set it to the address emails come from, e.g. notifier@shop.example"
                )
            smtp = SmtpSettings.from_url(
                smtp_url, sender=sender, password=env.get("NOTIFIER_SMTP_PASSWORD") or None
            )
        per_hour = (env.get("NOTIFIER_EMAILS_PER_HOUR") or "20").strip()
        if not per_hour.isdigit() or int(per_hour) < 1:
            raise ConfigurationError(
                f"NOTIFIER_EMAILS_PER_HOUR={per_hour!r} must be a whole number of at least 1"
            )
        base_url = (env.get("NOTIFIER_PUBLIC_URL") or "").strip() or None
        if base_url is not None and urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError(
                f"NOTIFIER_PUBLIC_URL={base_url!r} must be an http(s) URL such as "
                "https://admin.shop.example"
            )
        return cls(
            allow_private=flag(env, "NOTIFIER_DELIVERY_ALLOW_PRIVATE"),
            smtp=smtp,
            base_url=base_url,
            emails_per_hour=int(per_hour),
        )


@dataclass(slots=True)
class DispatchReport:
    """What one run did, by outcome."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Batches claimed (a run of :func:`dispatch_batches` that stops at its bound says so).
    batches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: str, n: int = 1) -> None:
        """Count ``n`` deliveries that ended this run as ``result`` (from any thread)."""
        with self._lock:
            self.counts[result] += n

    @property
    def total(self) -> int:
        """How many deliveries this run handled."""
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: Result
    duration: float = 0.0
    response_status: int | None = None
    response_body: str | None = None
    error_class: str | None = None
    error: str | None = None
    retry_after: float | None = None


def retry_delay(attempts_made: int, rng: Callable[[], float] = random.random) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failures; None when exhausted."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts_made]
    return base * (1 - JITTER + 2 * JITTER * rng())


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, RETRY_AFTER_MAX))


def _classify(response: egress.Response, now: datetime) -> _Outcome:
    status = response.status

    def outcome(result: Result, **error: Any) -> _Outcome:
        return _Outcome(result, response.duration, status, response.body, **error)

    if 200 <= status < 300:
        return outcome("succeeded")
    said = {"error_class": f"HTTP{status}", "error": f"the receiver answered {status}"}
    if status == 410:
        return outcome("gone", **said)
    if status in _RETRY_STATUSES or status >= 500:
        return outcome(
            "retry", retry_after=_retry_after(response.headers.get("retry-after"), now), **said
        )
    return outcome("failed", **said)


def _claim(db: Session, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
    """Claim up to ``limit`` due rows and load them, in one statement (UPDATE ... RETURNING)."""
    enabled = select(DeliveryEndpoint.id).where(DeliveryEndpoint.is_enabled)
    due = (
        select(Delivery.id)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
            or_(Delivery.endpoint_id.is_(None), Delivery.endpoint_id.in_(enabled)),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if db.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = db.scalars(
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + lease)
        .returning(Delivery),
        execution_options={"synchronize_session": False},
    )
    return sorted(claimed.all(), key=lambda row: row.id)


# -- what each channel sends -----------------------------------------------------------


def _link(settings: DispatchSettings, delivery: Delivery) -> str | None:
    if settings.base_url is None:
        return None
    tab = "?tab=alerts" if delivery.alert_id is not None else ""
    return settings.base_url.rstrip("/") + settings.pages_path + tab


def _headline(delivery: Delivery) -> tuple[str, str, str, str]:
    """(level, kind, title, text) of the object a delivery is about."""
    payload = delivery.payload
    if delivery.alert_id is not None:
        return (
            str(payload.get("severity", "")),
            str(payload.get("alert_type", "")),
            str(payload.get("title", "")),
            str(payload.get("description") or ""),
        )
    return (
        str(payload.get("priority", "")),
        str(payload.get("type", "")),
        str(payload.get("title", "")),
        str(payload.get("message", "")),
    )


def _facts(delivery: Delivery) -> list[tuple[str, str]]:
    payload = delivery.payload
    facts = [("Event", str(delivery.event_type))]
    if delivery.alert_id is not None:
        facts.append(("Occurrences", str(payload.get("occurrence_count", 1))))
        if payload.get("resolution_notes"):
            facts.append(("Resolution", str(payload["resolution_notes"])))
    elif payload.get("store_id") is not None:
        facts.append(("Store", str(payload["store_id"])))
    return facts


def _chat_message(settings: DispatchSettings, delivery: Delivery) -> ChatMessage:
    level, kind, title, text = _headline(delivery)
    return ChatMessage(
        title=f"{kind}: {title}",
        level=level,
        text=text,
        facts=_facts(delivery),
        url=_link(settings, delivery),
    )


def _signing_secrets(endpoint: DeliveryEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret] if endpoint.secret else []
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def _http_request(
    delivery: Delivery, endpoint: DeliveryEndpoint, settings: DispatchSettings, now: datetime
) -> tuple[bytes, dict[str, str]]:
    if endpoint.channel is DeliveryChannel.WEBHOOK:
        body = envelope(
            delivery.event_id, delivery.event_type, delivery.occurred_at, delivery.payload
        )
        return body, signed_headers(_signing_secrets(endpoint, now), delivery.message_id, body)
    chat = _chat_message(settings, delivery)
    data = slack_payload(chat) if endpoint.channel is DeliveryChannel.SLACK else teams_payload(chat)
    return json.dumps(data).encode(), {"content-type": "application/json"}


def _send_http(
    client: egress.Client,
    delivery: Delivery,
    endpoint: DeliveryEndpoint,
    settings: DispatchSettings,
    now: datetime,
) -> _Outcome:
    started = time.monotonic()
    try:
        body, headers = _http_request(delivery, endpoint, settings, now)
        response = client.post(endpoint.url, body, headers, allow_private=settings.allow_private)
    except DeliveryRefusedError as exc:
        return _Outcome("failed", time.monotonic() - started, error_class="Refused", error=str(exc))
    except Exception as exc:  # network errors, timeouts, TLS: the receiver may come back
        return _Outcome(
            "retry", time.monotonic() - started, error_class=type(exc).__name__, error=_short(exc)
        )
    return _classify(response, now)


def _short(exc: BaseException) -> str:
    # Exception texts from urllib3 can carry the URL (and so a Slack URL's credential).
    text = str(exc).split(" (Caused by", 1)[0]
    return text[:300]


def _mail_content(delivery: Delivery, settings: DispatchSettings) -> MailContent:
    level, kind, title, text = _headline(delivery)
    paragraphs = [p for p in (text,) if p]
    if delivery.event_type is DeliveryEvent.ALERT_RESOLVED:
        paragraphs.insert(0, "This alert is resolved.")
    elif delivery.event_type is DeliveryEvent.ALERT_ESCALATED:
        paragraphs.insert(0, f"This alert's severity rose to {level}.")
    elif delivery.event_type is DeliveryEvent.ALERT_REMINDER:
        paragraphs.insert(0, "Reminder: this alert is still open and nobody acknowledged it.")
    return MailContent(
        subject=f"[{level.upper()}] {kind}: {title}",
        paragraphs=paragraphs or [title],
        facts=_facts(delivery),
        url=_link(settings, delivery),
    )


def _listing(deliveries: Sequence[Delivery], shown: int = 20) -> str:
    lines = []
    for delivery in deliveries[:shown]:
        level, kind, title, _ = _headline(delivery)
        lines.append(f"[{level.upper()}] {kind}: {title}")
    if len(deliveries) > shown:
        lines.append(f"... and {len(deliveries) - shown} more")
    return "\n".join(lines)


def _pages_url(settings: DispatchSettings) -> str | None:
    return settings.base_url.rstrip("/") + settings.pages_path if settings.base_url else None


def _summary_content(deliveries: Sequence[Delivery], settings: DispatchSettings) -> MailContent:
    return MailContent(
        subject=f"{len(deliveries)} more notifications",
        paragraphs=[
            f"You reached this hour's email limit ({settings.emails_per_hour}); "
            f"these {len(deliveries)} arrived meanwhile:",
            _listing(deliveries),
        ],
        url=_pages_url(settings),
    )


def _quiet_content(deliveries: Sequence[Delivery], settings: DispatchSettings) -> MailContent:
    return MailContent(
        subject=f"{len(deliveries)} notifications during your quiet hours",
        paragraphs=[
            f"These {len(deliveries)} arrived while your quiet hours were on:",
            _listing(deliveries),
        ],
        url=_pages_url(settings),
    )


@dataclass(frozen=True, slots=True)
class _Mail:
    delivery_id: int
    content: MailContent
    alert_id: int | None = None
    opens_thread: bool = False


def _mail(delivery: Delivery, settings: DispatchSettings) -> _Mail:
    return _Mail(
        delivery.id,
        _mail_content(delivery, settings),
        delivery.alert_id,
        delivery.event_type in (DeliveryEvent.ALERT_OPENED, DeliveryEvent.ALERT_REGRESSED),
    )


def _event_of(delivery: Delivery) -> Event | None:
    payload = delivery.payload
    if delivery.event_type is DeliveryEvent.ENDPOINT_TEST:
        return None
    if delivery.alert_id is not None:
        return Event("alert", str(payload.get("alert_type")), str(payload.get("severity")))
    return Event("notification", str(payload.get("type")), str(payload.get("priority")))


def _with_unsubscribe(
    db: Session, settings: DispatchSettings, mail: _Mail, user_id: int, about: list[Delivery]
) -> _Mail:
    """``mail`` with its one-click unsubscribe link, unless it is one required email.

    One category unsubscribes from that category; a summary of several, from email.
    """
    if settings.base_url is None:
        return mail
    events = [_event_of(d) for d in about]
    if len(events) == 1 and events[0] is not None and is_required(events[0]):
        return mail
    kinds = {e.category for e in events if e is not None}
    what = kinds.pop() if len(kinds) == 1 and None not in events else unsubscribe.EMAIL
    url = unsubscribe_url(settings, unsubscribe.sign(db, user_id, what))
    return replace(mail, content=replace(mail.content, unsubscribe_url=url))


def unsubscribe_url(settings: DispatchSettings, token: str) -> str | None:
    """Where a one-click unsubscribe link points (None without ``base_url``)."""
    if settings.base_url is None:
        return None
    return f"{settings.base_url.rstrip('/')}{settings.unsubscribe_path}/{token}"


def _send_mail(settings: DispatchSettings, mail: _Mail, to: str) -> _Outcome:
    if settings.smtp is None:
        return _Outcome("failed", error_class="NotConfigured", error="NOTIFIER_SMTP_URL is not set")
    domain = settings.smtp.sender.rsplit("@", 1)[1]
    thread_root, is_root = None, False
    if mail.alert_id is not None:
        thread_root = alert_root_message_id(mail.alert_id, domain)
        is_root = mail.opens_thread
    message = compose(
        mail.content,
        sender=settings.smtp.sender,
        recipients=[to],
        list_id=list_id(settings.smtp),
        thread_root=thread_root,
        is_root=is_root,
    )
    started = time.monotonic()
    try:
        send(settings.smtp, message)
    except smtplib.SMTPRecipientsRefused as exc:
        return _Outcome(
            "failed", time.monotonic() - started, error_class=type(exc).__name__, error=_short(exc)
        )
    except (smtplib.SMTPException, OSError) as exc:
        return _Outcome(
            "retry", time.monotonic() - started, error_class=type(exc).__name__, error=_short(exc)
        )
    return _Outcome("succeeded", time.monotonic() - started)


# -- recording ------------------------------------------------------------------------


def _attempt(delivery_id: int, outcome: _Outcome, now: datetime) -> dict[str, Any]:
    """The ``delivery_attempts`` row recording ``outcome``."""
    return {
        "delivery_id": delivery_id,
        "attempted_at": now,
        "duration_ms": round(outcome.duration * 1000),
        "outcome": outcome.result if outcome.result in ("succeeded", "retry") else "failed",
        "error_class": outcome.error_class,
        "error": outcome.error,
        "response_status": outcome.response_status,
        "response_body": (outcome.response_body or None)
        and outcome.response_body[: egress.RESPONSE_BODY_LIMIT],
    }


@cache
def _success_statements() -> tuple[Update, Insert, Update]:
    """Mark deliveries sent, add their attempts, stamp their endpoints: built once.

    Core statements on the tables, compiled once: built per call as ORM statements, they
    cost more CPU than the send itself (see BENCHMARKS.md, Delivery).
    """
    deliveries = cast(Table, Delivery.__table__)
    endpoints = cast(Table, DeliveryEndpoint.__table__)
    mark = (
        update(deliveries)
        .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            status=DeliveryStatus.SUCCEEDED,
            attempt_count=deliveries.c.attempt_count + 1,
            claimed_until=None,
            finished_at=bindparam("now"),
            last_error=None,
        )
        .returning(deliveries.c.id, deliveries.c.endpoint_id)
    )
    stamp = (
        update(endpoints)
        .where(
            endpoints.c.id.in_(bindparam("endpoint_ids", expanding=True)),
            or_(
                endpoints.c.failing_since.is_not(None),
                endpoints.c.last_success_at.is_(None),
                endpoints.c.last_success_at <= bindparam("stale"),
            ),
        )
        .values(failing_since=None, last_success_at=bindparam("now"))
    )
    return mark, insert(cast(Table, DeliveryAttempt.__table__)), stamp


def _record_successes(
    db: Session,
    group: Sequence[tuple[int, DeliveryChannel, _Outcome]],
    now: datetime,
    stamp: set[int] | None,
) -> int:
    """Record sends that succeeded in at most three statements, however many; returns how many.

    ``stamp``: the endpoints whose health to update (None: all the deliveries' endpoints);
    ``last_success_at`` is written at most once a second per endpoint.
    """
    mark, add_attempts, stamp_endpoints = _success_statements()
    done = db.execute(mark, {"ids": [delivery_id for delivery_id, *_ in group], "now": now}).all()
    if not done:
        return 0
    present = {row[0] for row in done}
    recorded = [(i, channel, outcome) for i, channel, outcome in group if i in present]
    db.execute(add_attempts, [_attempt(i, outcome, now) for i, _, outcome in recorded])
    for channel in {channel for _, channel, _ in recorded}:
        amount = sum(1 for _, c, _ in recorded if c is channel)
        metrics.inc_on_commit(
            db, "notifier_delivery_attempts_total", (str(channel), "succeeded"), amount
        )
    endpoint_ids = {row[1] for row in done if row[1] is not None}
    if stamp is not None:
        endpoint_ids &= stamp
    if endpoint_ids:
        db.execute(
            stamp_endpoints,
            {"endpoint_ids": list(endpoint_ids), "now": now, "stale": now - SUCCESS_STAMP_EVERY},
        )
    return len(done)


def _record(db: Session, delivery: Delivery, outcome: _Outcome, now: datetime) -> str:
    attempt = _attempt(delivery.id, outcome, now)
    db.add(DeliveryAttempt(**attempt))
    metrics.inc_on_commit(
        db, "notifier_delivery_attempts_total", (str(delivery.channel), attempt["outcome"])
    )
    delivery.attempt_count += 1
    delivery.claimed_until = None
    endpoint = db.get(DeliveryEndpoint, delivery.endpoint_id) if delivery.endpoint_id else None
    if outcome.result == "succeeded":
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.finished_at = now
        delivery.last_error = None
        if endpoint is not None:
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
            stamped = endpoint.last_success_at
            if stamped is None or now - stamped >= SUCCESS_STAMP_EVERY:
                endpoint.last_success_at = now
        return "succeeded"
    delivery.last_error = outcome.error
    final = outcome.result
    if outcome.result == "retry":
        delay = retry_delay(delivery.attempt_count)
        if delay is None:
            final = "failed"
        else:
            delivery.next_attempt_at = now + timedelta(seconds=max(delay, outcome.retry_after or 0))
    if final != "retry":
        delivery.status = DeliveryStatus.FAILED
        delivery.finished_at = now
    if endpoint is not None and endpoint.channel is not DeliveryChannel.EMAIL:
        if outcome.result == "gone":
            _disable(db, endpoint, "the receiver answered 410 Gone")
        else:
            endpoint.failing_since = endpoint.failing_since or now
            if now - endpoint.failing_since >= DISABLE_AFTER:
                _disable(db, endpoint, "every delivery failed for 5 days")
    return "failed" if final == "gone" else final


def _disable(db: Session, endpoint: DeliveryEndpoint, reason: str) -> None:
    if not endpoint.is_enabled:
        return
    endpoint.is_enabled = False
    endpoint.disabled_reason = reason
    db.flush()  # so the notification below is not queued for this endpoint
    admin_notification_service.create_notification(
        db,
        type=NotificationType.SYSTEM_INFO,
        priority=Priority.HIGH,
        title=f"Delivery endpoint disabled: {endpoint.name}"[:200],
        message=f"{endpoint.channel} endpoint '{endpoint.name}' was disabled: {reason}. "
        "Fix the receiver, then enable it again on the Channels page.",
        action_required=True,
    )


# -- the run --------------------------------------------------------------------------


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


def _dispatch_emails(
    database: Database,
    settings: DispatchSettings,
    user_id: int,
    ids: list[int],
    report: DispatchReport,
) -> None:
    now = utcnow()
    with database.session_scope(immediate=True) as db:
        user = db.get(AdminUser, user_id)
        deliveries = [d for d in (db.get(Delivery, i) for i in ids) if d is not None]
        if user is None or not user.is_active:
            for delivery in deliveries:
                report.add(
                    _record(
                        db,
                        delivery,
                        _Outcome(
                            "failed",
                            error_class="NoRecipient",
                            error="the admin is gone or inactive",
                        ),
                        now,
                    )
                )
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
            (_mail(group[0], settings), [])
            if len(group) == 1
            else (
                _Mail(group[0].id, _quiet_content(group, settings)),
                [d.id for d in group[1:]],
            )
            for group in single
        ]
        if overflow:
            work.append(
                (
                    _Mail(overflow[0].id, _summary_content(overflow, settings)),
                    [d.id for d in overflow[1:]],
                )
            )
        by_id = {d.id: d for d in deliveries}
        work = [
            (
                _with_unsubscribe(
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
        outcome = _send_mail(settings, mail, address)
        with database.session_scope(immediate=True) as db:
            moment = utcnow()
            lead = db.get(Delivery, mail.delivery_id)
            if lead is None:
                continue
            report.add(_record(db, lead, outcome, moment))
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


class _Recorder:
    """Records attempts beside the sends, never more than ``in_flight`` sends behind.

    A send takes a slot; the slot is freed once its attempt is committed. One thread
    records, in send order: the attempts waiting when it comes free are committed together
    (one transaction, a few round trips for several sends). What a crash or a database cut
    can lose is only the sends not recorded yet, which the slots keep to ``in_flight``, and
    those go out again with the same webhook-id. Once a record fails nothing more is sent;
    the claims lapse and the next run sends the unrecorded ones again.
    """

    def __init__(self, database: Database, report: DispatchReport, in_flight: int) -> None:
        self.database = database
        self.report = report
        self._slots = threading.BoundedSemaphore(max(1, in_flight))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="notifier-record")
        self._waiting: list[tuple[int, DeliveryChannel, int | None, datetime | None, _Outcome]] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        # When each endpoint was last stamped healthy by this recorder (None: failing or
        # unknown), to skip an UPDATE per send: only the recording thread uses it.
        self._healthy_at: dict[int, datetime | None] = {}
        self.broken = threading.Event()

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Wait for room to send; yields False when a record failed and nothing may be sent."""
        self._slots.acquire()
        handed_over = False
        try:
            if self.broken.is_set():
                yield False
                return
            yield True
            handed_over = True
        finally:
            if not handed_over:
                self._slots.release()

    def record(self, delivery: Delivery, endpoint: DeliveryEndpoint, outcome: _Outcome) -> None:
        """Record ``outcome`` in the background; frees the slot taken for its send."""
        # What the batch's read said of the endpoint's health, for the first send to it.
        healthy_at = endpoint.last_success_at if endpoint.failing_since is None else None
        with self._lock:
            self._waiting.append(
                (delivery.id, delivery.channel, delivery.endpoint_id, healthy_at, outcome)
            )
        self._pool.submit(self._record_waiting)

    def _record_waiting(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        if not group:  # an earlier call took them
            return
        try:
            now = utcnow()
            stamp = set()
            for _, _, endpoint_id, read_healthy_at, outcome in group:
                if endpoint_id is None:
                    continue
                healthy_at = self._healthy_at.get(endpoint_id, read_healthy_at)
                if outcome.result != "succeeded":
                    self._healthy_at[endpoint_id] = None
                elif healthy_at is None or now - healthy_at >= SUCCESS_STAMP_EVERY:
                    stamp.add(endpoint_id)
            failing = {e for _, _, e, _, o in group if e is not None and o.result != "succeeded"}
            with self.database.session_scope(immediate=True) as db:
                _lock_endpoints(db, stamp | failing)
                succeeded = [(i, c, o) for i, c, _, _, o in group if o.result == "succeeded"]
                if succeeded:
                    self.report.add("succeeded", _record_successes(db, succeeded, now, stamp))
                for delivery_id, _, _, _, outcome in group:
                    if outcome.result != "succeeded":
                        fresh = db.get(Delivery, delivery_id)
                        if fresh is not None:
                            self.report.add(_record(db, fresh, outcome, now))
            for endpoint_id in stamp:
                self._healthy_at[endpoint_id] = now
        except BaseException as exc:
            if self._error is None:
                self._error = exc
            self.broken.set()
        finally:
            for _ in group:
                self._slots.release()

    def finish(self) -> None:
        """Wait for every record; raise the first that failed."""
        self._pool.shutdown(wait=True)
        if self._error is not None:
            raise self._error


def _lock_endpoints(db: Session, ids: set[int]) -> None:
    """Lock the endpoint rows a record will change, first and in id order (PostgreSQL).

    Two dispatchers recording groups that touch the same endpoints in opposite order (one
    stamps A then marks B failing, the other stamps B then marks A failing) would otherwise
    each hold the row the other waits for: a deadlock, one record lost and its sends
    repeated. Taken in one order up front, the second waits for the first instead.
    """
    if ids and db.get_bind().dialect.name == "postgresql":
        db.execute(
            select(DeliveryEndpoint.id)
            .where(DeliveryEndpoint.id.in_(sorted(ids)))
            .order_by(DeliveryEndpoint.id)
            .with_for_update()
        )


def _send_lane(
    lane: list[tuple[Delivery, DeliveryEndpoint]],
    settings: DispatchSettings,
    client: egress.Client,
    recorder: _Recorder,
) -> None:
    """Send one URL's deliveries in order, paced for chat, each recorded in the background."""
    last_chat = 0.0
    for delivery, endpoint in lane:
        with recorder.slot() as may_send:
            if not may_send:
                return
            if endpoint.channel in (DeliveryChannel.SLACK, DeliveryChannel.TEAMS):
                # about one message a second per URL: Slack's documented pace
                wait = last_chat + settings.slack_interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                last_chat = time.monotonic()
            outcome = _send_http(client, delivery, endpoint, settings, utcnow())
            recorder.record(delivery, endpoint, outcome)


@dataclass(slots=True)
class _Batch:
    """Claimed rows, by URL (webhooks, Slack, Teams) and by recipient (emails)."""

    lanes: dict[str, list[tuple[Delivery, DeliveryEndpoint]]]
    by_recipient: dict[int, list[int]]


def _claim_batch(database: Database, settings: DispatchSettings, limit: int) -> _Batch | None:
    """Claim and read one batch in one transaction: the rows are ours while the claim holds."""
    lanes: dict[str, list[tuple[Delivery, DeliveryEndpoint]]] = defaultdict(list)
    by_recipient: dict[int, list[int]] = defaultdict(list)
    with database.session_scope(immediate=True) as db:
        rows = _claim(db, utcnow(), limit, settings.claim_lease)
        if not rows:
            return None
        wanted = {row.endpoint_id for row in rows if row.endpoint_id is not None}
        endpoints = {
            e.id: e
            for e in db.scalars(select(DeliveryEndpoint).where(DeliveryEndpoint.id.in_(wanted)))
        }
        for row in rows:
            if row.channel is DeliveryChannel.EMAIL and row.recipient_user_id is not None:
                by_recipient[row.recipient_user_id].append(row.id)
            elif row.endpoint_id is not None and row.endpoint_id in endpoints:
                endpoint = endpoints[row.endpoint_id]
                lanes[endpoint.url].append((row, endpoint))
        db.expunge_all()
    return _Batch(lanes, by_recipient)


def dispatch_due(
    database: Database, settings: DispatchSettings, *, limit: int | None = None
) -> DispatchReport:
    """Send one batch of due deliveries (up to ``limit``); safe to run in many processes.

    Deliveries to one URL go out one after another, in order (and Slack/Teams paced);
    different URLs and different email recipients go out side by side (``senders`` threads).
    Attempts are recorded while the next sends go on, never more than ``in_flight`` behind.
    """
    return dispatch_batches(database, settings, max_batches=1, limit=limit)


def dispatch_batches(
    database: Database,
    settings: DispatchSettings,
    *,
    max_batches: int | None = None,
    limit: int | None = None,
    stop: threading.Event | None = None,
) -> DispatchReport:
    """Send batch after batch until nothing is due (or ``max_batches``, or ``stop`` is set).

    As :func:`dispatch_due`, and the next batch is claimed and read while the current one
    is sent: a batch's database round trips overlap the sends instead of pausing them.
    One URL's deliveries still go in order (a batch's sends start once the last batch's
    sends are done). Connections are kept for the run.
    """
    report = DispatchReport()
    size = limit or settings.batch_size
    batch = _claim_batch(database, settings, size)
    if batch is None:
        return report
    report.batches = 1
    recorder = _Recorder(database, report, settings.in_flight)
    try:
        with (
            egress.Client(per_address=settings.senders) as client,
            ThreadPoolExecutor(
                max(1, settings.senders), thread_name_prefix="notifier-send"
            ) as senders,
        ):
            while batch is not None:
                futures = [
                    senders.submit(_send_lane, lane, settings, client, recorder)
                    for lane in batch.lanes.values()
                ]
                futures += [
                    senders.submit(_dispatch_emails, database, settings, user_id, ids, report)
                    for user_id, ids in batch.by_recipient.items()
                ]
                upcoming = None
                if (
                    (max_batches is None or report.batches < max_batches)
                    and not (stop is not None and stop.is_set())
                    and not recorder.broken.is_set()
                ):
                    # Should a send fail below, this batch's claims lapse and it goes later.
                    upcoming = _claim_batch(database, settings, size)
                    report.batches += upcoming is not None
                for future in futures:
                    future.result()
                batch = upcoming
    finally:
        recorder.finish()
    return report


def run_dispatcher(
    database: Database,
    settings: DispatchSettings,
    *,
    stop: threading.Event,
    wake: threading.Event | None = None,
    sweep_every: float = 5.0,
) -> None:
    """Dispatch until ``stop`` is set: at once when ``wake`` is set, else every few seconds.

    A run that fails (the database is away) is logged and tried again at the next sweep.
    """
    wake = wake or threading.Event()
    while not stop.is_set():
        wake.clear()
        try:
            dispatch_batches(database, settings, stop=stop)
        except Exception:
            log.exception("notifier: delivery dispatch failed; retrying in %.0f s", sweep_every)
        wake.wait(sweep_every)


class DispatcherThread:
    """``run_dispatcher`` in a daemon thread, woken after a commit that queued deliveries."""

    def __init__(
        self, database: Database, settings: DispatchSettings, *, sweep_every: float = 5.0
    ) -> None:
        self.database = database
        self.settings = settings
        self.sweep_every = sweep_every
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once); with SMTP set, make sure the default email rule exists."""
        if self._thread is not None:
            return
        if self.settings.smtp is not None:
            with self.database.session_scope(immediate=True) as db:
                ensure_default_email_endpoint(db)
        self._thread = threading.Thread(
            target=run_dispatcher,
            args=(self.database, self.settings),
            kwargs={"stop": self._stop, "wake": self._wake, "sweep_every": self.sweep_every},
            name="notifier-dispatcher",
            daemon=True,
        )
        self._thread.start()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next sweep."""
        self._wake.set()

    def stop(self, timeout: float = 20.0) -> None:
        """Finish the current send and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def replay(db: Session, delivery_id: int) -> Delivery | None:
    """Send a failed delivery again, from a fresh retry schedule, with the same webhook-id."""
    delivery = db.get(Delivery, delivery_id)
    if delivery is None:
        return None
    if delivery.status is DeliveryStatus.FAILED:
        _requeue(delivery)
        mark_queued(db, 1)
    return delivery


def replay_failed_since(db: Session, since: datetime, *, endpoint_id: int | None = None) -> int:
    """Replay every failed delivery created since ``since``; returns how many."""
    query = select(Delivery).where(
        Delivery.status == DeliveryStatus.FAILED, Delivery.created_at >= since
    )
    if endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    count = 0
    for delivery in db.scalars(query):
        _requeue(delivery)
        count += 1
    mark_queued(db, count)
    return count


def _requeue(delivery: Delivery) -> None:
    delivery.status = DeliveryStatus.PENDING
    delivery.attempt_count = 0
    delivery.next_attempt_at = utcnow()
    delivery.claimed_until = None
    delivery.finished_at = None
