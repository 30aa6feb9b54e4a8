"""GET /metrics: the Prometheus text format, for a scraper that sends the metrics token.

Off (404) unless ``NOTIFIER_METRICS_TOKEN`` is set; the scraper sends it as
``Authorization: Bearer <token>``. With ``PROMETHEUS_MULTIPROC_DIR`` set, a scrape adds up
every process writing there (gunicorn workers, Celery children, the drainer); without it,
this process's own counts. Open alerts by severity, open alerts held back by a root cause,
and pending and failed deliveries by channel, are read from the database at scrape.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound, TooManyRequests, Unauthorized

from notifier import DeliveryChannel, DeliveryStatus, Severity, metrics
from notifier.health import QueueReport, queue_reports
from notifier.models import Delivery, PlatformAlert, ScheduleEntry

from .auth import bad_token_wait, count_bad_token
from .state import app_state

metrics_blueprint = Blueprint("notifier_metrics", __name__)


class _OpenAlerts:
    """Open alerts by severity, counted when scraped (one grouped query on an index)."""

    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "notifier_open_alerts", "Unresolved platform alerts, by severity.", labels=["severity"]
        )
        for severity in Severity:
            family.add_metric([severity.value], self.rows.get(severity.value, 0))
        yield family


class _Deliveries:
    """Deliveries waiting (pending) and dead (failed), by channel, counted when scraped."""

    def __init__(self, rows: dict[tuple[str, str], int]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "notifier_deliveries",
            "Deliveries waiting to be sent (pending) or given up (failed), by channel.",
            labels=["channel", "status"],
        )
        for channel in DeliveryChannel:
            for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
                family.add_metric(
                    [channel.value, status.value], self.rows.get((channel.value, status.value), 0)
                )
        yield family


class _Queues:
    """Each watched queue's depth, consumers and oldest wait, as the last check saw them."""

    def __init__(self, reports: list[QueueReport]) -> None:
        self.reports = reports

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        families = (
            ("notifier_queue_depth", "Messages waiting in a watched queue.", "depth"),
            ("notifier_queue_consumers", "Live workers consuming a watched queue.", "consumers"),
            (
                "notifier_queue_oldest_age_seconds",
                "How long a watched queue's head message has waited, at least (0 when empty).",
                "oldest_age",
            ),
        )
        for name, help_text, field in families:
            family = GaugeMetricFamily(name, help_text, labels=["queue"])
            for report in self.reports:
                family.add_metric([report.name], float(getattr(report, field) or 0))
            yield family


class _HeldBack:
    """Open alerts an open root cause holds back, counted when scraped."""

    def __init__(self, count: int) -> None:
        self.count = count

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily(
            "notifier_held_back_alerts",
            "Unresolved platform alerts held back (not delivered) by an open root cause.",
            value=self.count,
        )


class _Schedule:
    """When each scheduled entry last succeeded (Unix time; absent until its first success)."""

    def __init__(self, rows: list[tuple[str, float]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "notifier_schedule_last_success_timestamp_seconds",
            "When each beat entry's last run finished successfully, as Unix time.",
            labels=["entry"],
        )
        for entry, seen in self.rows:
            family.add_metric([entry], seen)
        yield family


class _ThisProcess:
    """The default registry's metrics (this process), when there is no multiprocess dir."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()


@metrics_blueprint.get("")
def scrape() -> Response:
    """The metrics, for a scraper with the token."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    token = current_app.config.get("NOTIFIER_METRICS_TOKEN")
    if not token:
        raise NotFound()
    sent = request.headers.get("Authorization")
    if sent is None or not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        # As on the API: only a caller without the right token is throttled, and only a
        # wrong token (not a missing one) counts, against the same allowance.
        wait = bad_token_wait()
        if wait:
            raise TooManyRequests(
                f"too many failed authentication attempts; retry in {wait} seconds",
                retry_after=wait,
            )
        if sent is not None:
            count_bad_token()
        raise Unauthorized("send Authorization: Bearer <NOTIFIER_METRICS_TOKEN>")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    with app_state().database.sessionmaker() as db:
        rows = db.execute(
            select(PlatformAlert.severity, func.count())
            .where(PlatformAlert.is_resolved.is_(False))
            .group_by(PlatformAlert.severity)
        ).all()
        held_back = db.scalar(
            select(func.count())
            .select_from(PlatformAlert)
            .where(PlatformAlert.held_back_by_id.is_not(None), PlatformAlert.is_resolved.is_(False))
        )
        waiting = db.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .where(Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.FAILED)))
            .group_by(Delivery.channel, Delivery.status)
        ).all()
        succeeded = db.execute(
            select(ScheduleEntry.name, ScheduleEntry.last_success_at).where(
                ScheduleEntry.active.is_(True), ScheduleEntry.last_success_at.is_not(None)
            )
        ).all()
        queues = queue_reports(db)
    registry.register(_OpenAlerts({Severity(s).value: int(n) for s, n in rows}))
    registry.register(_Queues(queues))
    registry.register(_HeldBack(int(held_back or 0)))
    registry.register(_Schedule([(name, at.timestamp()) for name, at in succeeded]))
    registry.register(
        _Deliveries(
            {(DeliveryChannel(c).value, DeliveryStatus(s).value): int(n) for c, s, n in waiting}
        )
    )
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)


def start_timer() -> None:
    """Remember when an API request started (the first hook of the API blueprint)."""
    g._notifier_started = time.perf_counter()


def observe_request(response: Response) -> Response:
    """Time an API request by its route template (never the raw path: bounded labels)."""
    started = g.pop("_notifier_started", None)
    rule = request.url_rule
    if started is not None and rule is not None and not rule.rule.endswith("/stream"):
        metrics.observe(
            "notifier_api_request_duration_seconds",
            time.perf_counter() - started,
            rule.rule,
            request.method,
            str(response.status_code),
        )
    return response
