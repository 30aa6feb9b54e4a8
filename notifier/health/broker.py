"""The broker as the workers see it: one root cause while a live worker cannot reach it.

Each worker's health loop probes its broker every interval; after a few failed probes in a
row it reports :func:`broker_unreachable`, and once a probe succeeds again
:func:`broker_reachable`. The alert ("Broker unreachable from the worker", one per broker
tag) explains ``broker:<tag>``: job failures whose exception is a connection error to that
broker are held back behind it. It lists the workers that cannot reach the broker
(``unreachable_from``); a worker that reaches it again leaves the list, and the alert
resolves (its summary goes out) only when no worker with a fresh heartbeat is left on it.
So a worker that reaches the broker never ends another's outage, one broker down under ten
workers is one alert counted ten times, and a worker that died cut off (its heartbeat
expires) does not hold the alert open for ever. Both calls are idempotent: the health loop
makes one of them every tick, and only a change writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..enums import AlertType, Severity
from ..models import PlatformAlert
from ..text import clip
from ..types import utcnow
from ..validation import MESSAGE_MAX
from .alerting import open_health_alert, resolve_automatically
from .runs import fresh_heartbeats

__all__ = [
    "BROKER_FINGERPRINT",
    "BROKER_TITLE",
    "broker_reachable",
    "broker_scope",
    "broker_unreachable",
]

#: The fingerprint prefix of a broker's root cause; its tag follows.
BROKER_FINGERPRINT = "broker:unreachable:"
BROKER_TITLE = "Broker unreachable from the worker"
_HOSTS = "unreachable_from"


def broker_scope(tag: str) -> str:
    """The scope a broker's root cause explains (and its connection-error failures carry)."""
    return f"broker:{tag}"


def _locked(db: Session, tag: str) -> PlatformAlert | None:
    # The row is locked for the rest of the transaction, so two workers editing the list of
    # hosts at once do not lose one (SQLite: the caller's immediate transaction does it).
    return db.scalars(
        select(PlatformAlert)
        .where(
            PlatformAlert.fingerprint == f"{BROKER_FINGERPRINT}{tag}",
            PlatformAlert.is_resolved.is_(False),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _hosts(alert: PlatformAlert) -> list[str]:
    return [str(h) for h in (alert.alert_metadata or {}).get(_HOSTS) or []]


def _describe(url: str, hosts: list[str], since: str, error: str) -> str:
    return (
        f"The broker {url} could not be reached from {', '.join(hosts)} since {since} "
        f"({error or 'no answer'}). Those workers receive no tasks and their tasks cannot "
        "publish; failures whose exception is a connection error to this broker are held "
        "back by this alert, and its resolution sends their summary."
    )


def broker_unreachable(
    db: Session, *, tag: str, url: str, hostname: str, since: datetime, error: str = ""
) -> PlatformAlert:
    """Worker ``hostname`` cannot reach the broker ``tag`` (shown as ``url``, no password).

    Opens the root cause, or adds the worker to the open one (counting one occurrence per
    worker); nothing is written when the worker is already on it.
    """
    alert = _locked(db, tag)
    if alert is not None and hostname in _hosts(alert):
        return alert
    at = since.isoformat(timespec="seconds").replace("+00:00", "Z")
    alert, _ = open_health_alert(
        db,
        fingerprint=f"{BROKER_FINGERPRINT}{tag}",
        title=BROKER_TITLE,
        description=_describe(url, [hostname], at, error),
        severity=Severity.CRITICAL,
        alert_type=AlertType.INTEGRATION,
        metadata={"broker": url, "unreachable_since": at},
        systems=["celery", "broker"],
        explains=broker_scope(tag),
        bell=False,
    )
    # Read again under the lock: another worker may have opened it since the first read
    # (the upsert then waited for its commit and counted this one on it).
    alert = _locked(db, tag) or alert
    hosts = sorted({*_hosts(alert), hostname})
    metadata = alert.alert_metadata or {}
    alert.alert_metadata = {**metadata, _HOSTS: hosts}
    since_text = str(metadata.get("unreachable_since", at))
    alert.description = clip(_describe(url, hosts, since_text, error), MESSAGE_MAX)
    db.flush()
    return alert


def broker_reachable(
    db: Session, *, tag: str, hostname: str, now: datetime | None = None
) -> PlatformAlert | None:
    """Worker ``hostname`` reaches the broker ``tag``: leave its alert, resolve it if empty.

    Workers without a fresh heartbeat leave it too (stopped or dead while cut off).
    Returns the alert if this call resolved it.
    """
    alert = _locked(db, tag)
    if alert is None:
        return None
    hosts = _hosts(alert)
    alive = {beat.hostname for beat in fresh_heartbeats(db, now)}
    left = [h for h in hosts if h != hostname and h in alive]
    if left:
        if left != hosts:
            alert.alert_metadata = {**(alert.alert_metadata or {}), _HOSTS: left}
            db.flush()
        return None
    alert.alert_metadata = {**(alert.alert_metadata or {}), _HOSTS: []}
    db.flush()
    at = (now or utcnow()).isoformat(timespec="seconds").replace("+00:00", "Z")
    return resolve_automatically(db, alert, f"{hostname} reached the broker at {at}")
