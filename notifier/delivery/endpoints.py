"""Delivery endpoints: create, change, rotate the secret, enable or disable, test, delete.

A webhook's signing secret is returned once, by ``create`` and ``rotate_secret``; afterwards
only its existence shows. Rotation keeps the old secret signing for 24 hours, so receivers
can switch over without dropping a delivery. A PagerDuty endpoint's secret is its routing
key, typed by the admin and never shown back; an Apprise endpoint's URL is its credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..enums import AlertType, DeliveryChannel, DeliveryEvent, NotificationType, Priority, Severity
from ..errors import DeliveryRefusedError
from ..models import DeliveryEndpoint
from ..outbox import forget_endpoints, new_id, queue
from ..types import utcnow
from ..validation import ACTION_URL_MAX, Checker, endpoint_url_problem
from . import apprise, egress, pagerduty
from .webhooks import generate_secret

__all__ = ["ROTATION_OVERLAP", "EndpointService", "display_url", "endpoint_service"]

ROTATION_OVERLAP = timedelta(hours=24)
NAME_MAX = 100
_UNSET: Any = object()
_FILTER_ENUMS: tuple[tuple[str, Any], ...] = (
    ("event_types", DeliveryEvent),
    ("notification_types", NotificationType),
    ("alert_types", AlertType),
)


def _enum_names(check: Checker, field: str, value: Any, enum_cls: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        check.fail(field, "must be a list")
        return []
    return sorted({str(check.enum(field, item, enum_cls)) for item in value})


def display_url(endpoint: DeliveryEndpoint) -> str:
    """The endpoint's URL as admins may see it after saving: never a credential.

    A Slack or Teams URL *is* its credential, so only its scheme, host and last four
    characters show; a webhook (authenticated by its signing secret) shows its path but not
    its query, which is where tokens usually ride.
    """
    if endpoint.channel is DeliveryChannel.EMAIL:
        return endpoint.url
    if endpoint.channel is DeliveryChannel.APPRISE:
        return apprise.display_url(endpoint.url)
    parts = urlsplit(endpoint.url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if endpoint.channel in (DeliveryChannel.WEBHOOK, DeliveryChannel.PAGERDUTY):
        return origin + parts.path + ("?…" if parts.query else "")
    rest = endpoint.url[len(origin) :]
    return origin + "/…" + (rest[-4:] if len(rest) > 16 else "")


def _url_problem(channel: DeliveryChannel, url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` cannot be this kind of endpoint's URL, or None."""
    if channel is DeliveryChannel.APPRISE:
        return apprise.url_problem(url, allow_private=allow_private)
    problem = endpoint_url_problem(url)
    if problem is None:
        try:
            egress.check_url(url, allow_private=allow_private)
        except DeliveryRefusedError as exc:
            problem = str(exc)
    return problem


def _validate_target(
    check: Checker, endpoint: DeliveryEndpoint, fields: dict[str, Any], *, allow_private: bool
) -> None:
    """The URL and, for PagerDuty, the routing key: where and how the endpoint is reached."""
    if "url" in fields:
        url = check.text("url", fields["url"], max_length=ACTION_URL_MAX)
        if url is not None:
            problem = _url_problem(endpoint.channel, url, allow_private=allow_private)
            if problem:
                check.fail("url", problem)
            endpoint.url = url
    if "routing_key" in fields:
        key = check.text("routing_key", fields["routing_key"], max_length=100)
        if endpoint.channel is not DeliveryChannel.PAGERDUTY:
            check.fail("routing_key", "only PagerDuty endpoints have a routing key")
        elif key is not None:
            problem = pagerduty.routing_key_problem(key)
            if problem:
                check.fail("routing_key", problem)
            endpoint.secret = key


class EndpointService:
    """Operations on delivery endpoints; each takes the caller's session and never commits."""

    def _validate(
        self,
        check: Checker,
        endpoint: DeliveryEndpoint,
        fields: dict[str, Any],
        *,
        allow_private: bool,
    ) -> None:
        if "name" in fields:
            endpoint.name = check.text("name", fields["name"], max_length=NAME_MAX) or ""
        _validate_target(check, endpoint, fields, allow_private=allow_private)
        for name, enum_cls in _FILTER_ENUMS:
            if name in fields:
                setattr(endpoint, name, _enum_names(check, name, fields[name], enum_cls))
        lists: tuple[tuple[str, Any], ...] = (
            ("store_ids", check.int_list),
            ("owners", check.name_list),
        )
        for name, as_list in lists:
            if name in fields:
                setattr(endpoint, name, sorted(set(as_list(name, fields[name]))))
        if "min_priority" in fields:
            value = fields["min_priority"]
            endpoint.min_priority = (
                None if value is None else check.enum("min_priority", value, Priority)
            )
        if "min_severity" in fields:
            value = fields["min_severity"]
            endpoint.min_severity = (
                None if value is None else check.enum("min_severity", value, Severity)
            )

    def create(
        self,
        db: Session,
        *,
        name: str,
        channel: DeliveryChannel | str,
        url: str | None = None,
        routing_key: str | None = None,
        event_types: Sequence[str] = (),
        notification_types: Sequence[str] = (),
        alert_types: Sequence[str] = (),
        store_ids: Sequence[int] = (),
        min_priority: Priority | str | None = None,
        min_severity: Severity | str | None = None,
        allow_private: bool = False,
        owners: Sequence[str] = (),
    ) -> tuple[DeliveryEndpoint, str | None]:
        """A new enabled endpoint, and its webhook secret (None for the other kinds).

        ``url`` is required but for PagerDuty (its Events API v2 by default); ``routing_key``
        is PagerDuty's, required there and refused elsewhere.
        """
        check = Checker()
        kind = check.enum("channel", channel, DeliveryChannel)
        if kind is DeliveryChannel.EMAIL:
            check.fail("channel", "email goes to the admins; edit the 'Admins by email' endpoint")
        if kind is DeliveryChannel.PAGERDUTY:
            url = url or pagerduty.DEFAULT_URL
            if routing_key is None:
                check.fail("routing_key", "is required for a PagerDuty endpoint")
        endpoint = DeliveryEndpoint(channel=kind, is_enabled=True)
        more = {} if routing_key is None else {"routing_key": routing_key}
        self._validate(
            check,
            endpoint,
            {
                **more,
                "name": name,
                "url": url,
                "event_types": list(event_types),
                "notification_types": list(notification_types),
                "alert_types": list(alert_types),
                "store_ids": list(store_ids),
                "min_priority": min_priority,
                "min_severity": min_severity,
                "owners": list(owners),
            },
            allow_private=allow_private,
        )
        check.done()
        secret = None
        if kind is DeliveryChannel.WEBHOOK:
            secret = endpoint.secret = generate_secret()
        db.add(endpoint)
        db.flush()
        forget_endpoints(db)
        return endpoint, secret

    def get(self, db: Session, endpoint_id: int) -> DeliveryEndpoint | None:
        """One endpoint, or None."""
        return db.get(DeliveryEndpoint, endpoint_id)

    def list(self, db: Session) -> list[DeliveryEndpoint]:
        """Every endpoint, oldest first."""
        return list(db.scalars(select(DeliveryEndpoint).order_by(DeliveryEndpoint.id)))

    def update(
        self, db: Session, endpoint: DeliveryEndpoint, *, allow_private: bool = False, **fields: Any
    ) -> DeliveryEndpoint:
        """Change the name, URL, routing key (PagerDuty) or filter; unknown fields are refused."""
        allowed = {
            "name",
            "url",
            "routing_key",
            "event_types",
            "notification_types",
            "alert_types",
            "store_ids",
            "min_priority",
            "min_severity",
            "owners",
        }
        check = Checker()
        for unknown in sorted(set(fields) - allowed):
            check.fail(unknown, "cannot be changed")
        if endpoint.channel is DeliveryChannel.EMAIL and "url" in fields:
            check.fail("url", "the email endpoint has no URL")
        self._validate(check, endpoint, fields, allow_private=allow_private)
        check.done()
        forget_endpoints(db)
        return endpoint

    def set_enabled(
        self, db: Session, endpoint: DeliveryEndpoint, enabled: bool
    ) -> DeliveryEndpoint:
        """Enable (clearing the failure streak) or disable an endpoint."""
        endpoint.is_enabled = enabled
        if enabled:
            endpoint.disabled_reason = None
            endpoint.failing_since = None
        else:
            endpoint.disabled_reason = "disabled by an admin"
        forget_endpoints(db)
        return endpoint

    def rotate_secret(self, db: Session, endpoint: DeliveryEndpoint) -> str:
        """A new secret (returned once); the old one keeps signing for 24 hours."""
        if endpoint.channel is not DeliveryChannel.WEBHOOK:
            raise DeliveryRefusedError("only webhook endpoints have a signing secret")
        new = generate_secret()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
        endpoint.secret = new
        return new

    def send_test(self, db: Session, endpoint: DeliveryEndpoint) -> int:
        """Queue an ``endpoint.test`` event for this endpoint alone; returns the rows added."""
        payload = {"endpoint_id": endpoint.id, "name": endpoint.name, "message": "Test event"}
        return queue(db, endpoint, DeliveryEvent.ENDPOINT_TEST, new_id("evt"), payload, utcnow())

    def delete(self, db: Session, endpoint: DeliveryEndpoint) -> None:
        """Delete an endpoint and its delivery log."""
        db.delete(endpoint)
        forget_endpoints(db)


endpoint_service = EndpointService()
