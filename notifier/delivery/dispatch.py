"""The dispatcher: claims due outbox rows, sends them, and records every attempt.

A claim is one ``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) RETURNING *``
that stamps ``claimed_until``: concurrent dispatchers never take the same row, and a
dispatcher killed mid-send leaves a claim that lapses, so the row is sent again with the same
``webhook-id`` (at least once; receivers deduplicate on the id). Nothing is sent inside a
transaction. Retry times live in ``next_attempt_at``, never in long Celery countdowns (which
outlive a Redis visibility timeout and run twice).

This module is the run (claims, batches, lanes, the dispatcher thread) and the public
surface; the parts live beside it: ``delivery_settings`` (settings, the run's report),
``senders`` (what each channel sends, and sending it), ``email_dispatch`` (one admin's
emails: hourly cap, digest, quiet hours) and ``attempts`` (retry schedule, recording,
replay).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..db import Database
from ..enums import DeliveryChannel, DeliveryStatus
from ..models import Delivery, DeliveryEndpoint
from ..outbox import ensure_default_email_endpoint, recheck_held
from ..types import utcnow
from . import egress
from .attempts import MAX_ATTEMPTS, RETRY_DELAYS, Recorder, replay, replay_failed_since, retry_delay
from .email import dispatch_emails
from .senders import send_apprise, send_http, unsubscribe_url, with_action_key
from .settings import DispatchReport, DispatchSettings

log = logging.getLogger(__name__)

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


#: Channels sent about one message a second per URL (chat services' documented pace).
_PACED = (DeliveryChannel.SLACK, DeliveryChannel.TEAMS, DeliveryChannel.APPRISE)


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


@dataclass(frozen=True, slots=True)
class _Claim:
    """A claim on some rows: until when it holds (as stored), and when it was taken."""

    until: datetime
    taken: float  # time.monotonic()

    def half_gone(self, settings: DispatchSettings) -> bool:
        """Whether half the lease has passed: time to renew before sending more."""
        return time.monotonic() - self.taken > settings.claim_lease.total_seconds() / 2


def _reclaim(
    database: Database, settings: DispatchSettings, ids: list[int], claim: _Claim
) -> tuple[set[int], _Claim] | None:
    """Hold ``ids`` a lease longer, those still ours under ``claim``; None if none is.

    A row whose claim lapsed may have been claimed and sent by another dispatcher: it is
    left out, so it is not sent twice.
    """
    now = utcnow()
    with database.session_scope(immediate=True) as db:
        kept = db.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.claimed_until == claim.until,  # still our claim
            )
            .values(claimed_until=now + settings.claim_lease)
            .returning(Delivery.id, Delivery.claimed_until),
            execution_options={"synchronize_session": False},
        ).all()
    if not kept:
        return None
    until = kept[0][1]
    assert until is not None
    return {row_id for row_id, _ in kept}, _Claim(until, time.monotonic())


def _send_lane(
    lane: list[tuple[Delivery, DeliveryEndpoint]],
    claim: _Claim,
    database: Database,
    settings: DispatchSettings,
    client: egress.Client,
    recorder: Recorder,
) -> None:
    """Send one URL's deliveries in order, paced for chat, each recorded in the background.

    A slow URL (sends near their timeout, one after another) can outlast the claim, and
    another dispatcher would then send the rest again: past half the lease, the lane's
    unsent rows are claimed a lease longer before the next send.
    """
    last_chat = 0.0
    rest = deque(lane)
    while rest:
        if claim.half_gone(settings):
            renewed = _reclaim(database, settings, [d.id for d, _ in rest], claim)
            if renewed is None:
                return
            kept, claim = renewed
            rest = deque(pair for pair in rest if pair[0].id in kept)
            continue
        delivery, endpoint = rest.popleft()
        if endpoint.id in recorder.gone:  # left pending: sent if the endpoint is enabled again
            continue
        with recorder.slot() as may_send:
            if not may_send:
                return
            if claim.half_gone(settings):  # waited for a slot: renew before sending
                rest.appendleft((delivery, endpoint))
                continue
            if endpoint.channel in _PACED:
                # about one message a second per URL: Slack's documented pace
                wait = last_chat + settings.slack_interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                last_chat = time.monotonic()
            if endpoint.channel is DeliveryChannel.APPRISE:
                outcome = send_apprise(delivery, endpoint, settings)
            else:
                outcome = send_http(client, delivery, endpoint, settings, utcnow())
            recorder.record(delivery, endpoint, outcome)


def _send_emails(
    database: Database,
    settings: DispatchSettings,
    claim: _Claim,
    user_id: int,
    ids: list[int],
    report: DispatchReport,
) -> None:
    """One admin's emails, re-claimed first should they have waited behind slow lanes."""
    if claim.half_gone(settings):
        renewed = _reclaim(database, settings, ids, claim)
        if renewed is None:
            return
        ids = [i for i in ids if i in renewed[0]]
    dispatch_emails(database, settings, user_id, ids, report)


@dataclass(slots=True)
class _Batch:
    """Claimed rows, by URL (webhooks, Slack, Teams) and by recipient (emails)."""

    lanes: dict[str, list[tuple[Delivery, DeliveryEndpoint]]]
    by_recipient: dict[int, list[int]]
    claim: _Claim

    def ids(self) -> list[int]:
        """Every delivery in the batch."""
        ids = [delivery.id for lane in self.lanes.values() for delivery, _ in lane]
        return ids + [i for group in self.by_recipient.values() for i in group]


def _renewed(database: Database, settings: DispatchSettings, batch: _Batch) -> _Batch | None:
    """``batch`` claimed afresh, less any row whose claim lapsed and went to someone else.

    A batch claimed ahead waits for the one before it to send; should that take long, its
    lease may have run out and another dispatcher may have sent some of its rows.
    """
    renewed = _reclaim(database, settings, batch.ids(), batch.claim)
    if renewed is None:
        return None
    ids, claim = renewed
    lanes = {url: [(d, e) for d, e in lane if d.id in ids] for url, lane in batch.lanes.items()}
    by_recipient = {
        user_id: [i for i in group if i in ids] for user_id, group in batch.by_recipient.items()
    }
    return _Batch(
        {url: lane for url, lane in lanes.items() if lane},
        {user_id: group for user_id, group in by_recipient.items() if group},
        claim,
    )


def _claim_batch(
    database: Database, settings: DispatchSettings, limit: int, *, first: bool = False
) -> _Batch | None:
    """Claim and read one batch in one transaction: the rows are ours while the claim holds.

    ``first``: a run's first batch, which also makes sure the default email rule exists
    when SMTP is set (every dispatcher, whichever process runs it, starts this way).
    """
    lanes: dict[str, list[tuple[Delivery, DeliveryEndpoint]]] = defaultdict(list)
    by_recipient: dict[int, list[int]] = defaultdict(list)
    with database.session_scope(immediate=True) as db:
        if first and settings.smtp is not None:
            ensure_default_email_endpoint(db)
        rows = _claim(db, utcnow(), limit, settings.claim_lease)
        held = recheck_held(db, rows)  # a root cause opened since a symptom was queued
        while held and not (rows := [row for row in rows if row.id not in held]):
            rows = _claim(db, utcnow(), limit, settings.claim_lease)
            held = recheck_held(db, rows)
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
    until = rows[0].claimed_until
    assert until is not None
    return _Batch(lanes, by_recipient, _Claim(until, time.monotonic()))


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
    sends are done). Connections are kept for the run. With SMTP set, the run first makes
    sure the default email rule ("Admins by email") exists: every dispatcher (the task,
    the drainer's thread, ``notifier dispatch``) runs this function, so this is its one home.
    """
    report = DispatchReport()
    size = limit or settings.batch_size
    batch = _claim_batch(database, settings, size, first=True)
    if batch is None:
        return report
    settings = with_action_key(database, settings)  # once per run that has work
    report.batches = 1
    recorder = Recorder(database, report, settings.in_flight)

    def claim_next() -> _Batch | None:
        """The next batch, if the run may take one more (``max_batches``)."""
        if max_batches is not None and report.batches >= max_batches:
            return None
        claimed = _claim_batch(database, settings, size)
        report.batches += claimed is not None
        return claimed

    try:
        with (
            egress.Client(per_address=settings.senders) as client,
            ThreadPoolExecutor(
                max(1, settings.senders), thread_name_prefix="notifier-send"
            ) as senders,
        ):
            while batch is not None:
                if batch.claim.half_gone(settings):
                    renewed = _renewed(database, settings, batch)
                    if renewed is None:  # every row went elsewhere: claim afresh
                        batch = claim_next()
                        continue
                    batch = renewed
                futures = [
                    senders.submit(
                        _send_lane, lane, batch.claim, database, settings, client, recorder
                    )
                    for lane in batch.lanes.values()
                ]
                futures += [
                    senders.submit(
                        _send_emails, database, settings, batch.claim, user_id, ids, report
                    )
                    for user_id, ids in batch.by_recipient.items()
                ]
                upcoming = None
                if not (stop is not None and stop.is_set()) and not recorder.broken.is_set():
                    # Should a send fail below, this batch's claims lapse and it goes later.
                    upcoming = claim_next()
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
        """Start the thread (once); its first run creates the default email rule if due."""
        if self._thread is not None:
            return
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
