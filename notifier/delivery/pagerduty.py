"""PagerDuty Events API v2: an alert's life as a PagerDuty incident's.

``trigger`` when an alert opens, regresses or escalates, ``acknowledge`` when an admin
acknowledges it, ``resolve`` when it is resolved; every event carries the alert's fingerprint
as ``dedup_key`` (at most 255 characters, as fingerprints are), so PagerDuty folds them into
one incident. The routing key is the endpoint's secret. Field limits are PagerDuty's (Events
API v2, "Send an Alert Event"): ``summary`` at most 1,024 characters, ``severity`` one of
critical, error, warning, info. Answers mean what they mean for any HTTP channel
(``attempts.classify``): 202 is success, 400 (a malformed event) fails for good, 429 and 5xx
retry, honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..enums import DeliveryEvent, Severity
from ..models import Delivery
from ..text import clip

__all__ = [
    "DEDUP_KEY_MAX",
    "DEFAULT_URL",
    "ROUTING_KEY_RULE",
    "SUMMARY_MAX",
    "event_action",
    "event_body",
    "routing_key_problem",
]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
#: PagerDuty's other free-text fields (source, component, class, group) have no documented
#: limit; these stay short so an event never nears the 512 KB one.
FIELD_MAX = 255
LINKS_MAX = 10
ROUTING_KEY_RULE = "must be the integration's 32-character routing key (letters and digits)"
_ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")

_ACTIONS = {
    DeliveryEvent.ALERT_OPENED: "trigger",
    DeliveryEvent.ALERT_REGRESSED: "trigger",
    # The severity rose: a trigger on the same dedup_key updates the incident's severity.
    DeliveryEvent.ALERT_ESCALATED: "trigger",
    DeliveryEvent.ALERT_ACKNOWLEDGED: "acknowledge",
    DeliveryEvent.ALERT_RESOLVED: "resolve",
    # A real trigger, severity info, under a key of its own: the admin resolves it there.
    DeliveryEvent.ENDPOINT_TEST: "trigger",
}


def routing_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a routing key, or None."""
    return None if _ROUTING_KEY.fullmatch(key) else ROUTING_KEY_RULE


def event_action(event: DeliveryEvent) -> str:
    """``trigger``, ``acknowledge`` or ``resolve`` for a delivery event PagerDuty takes.

    Which events those are is the outbox's rule (``notifier.outbox.takes``).
    """
    return _ACTIONS[event]


def _links(payload: Mapping[str, Any], link: str | None) -> list[dict[str, str]]:
    """The alert's page and, when the alert carries them, its runbook and other links.

    ``runbook`` (a URL) and ``links`` (``[{"href", "text"}]``) are read from the alert's
    payload when present, so a field added to alerts shows here without a change.
    """
    links: list[dict[str, str]] = []
    if link:
        links.append({"href": link, "text": "Open in notifier"})
    runbook = payload.get("runbook")
    if isinstance(runbook, str) and runbook.startswith(("https://", "http://")):
        links.append({"href": runbook, "text": "Runbook"})
    extra = payload.get("links")
    for item in extra if isinstance(extra, list) else []:
        href = item.get("href") if isinstance(item, dict) else None
        if isinstance(href, str) and href.startswith(("https://", "http://")):
            text = item.get("text")
            links.append({"href": href} | ({"text": clip(text, FIELD_MAX)} if text else {}))
    return links[:LINKS_MAX]


def _details(payload: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "description",
        "occurrence_count",
        "first_occurred_at",
        "last_occurred_at",
        "affected_stores",
        "affected_systems",
        "owner",
    )
    return {key: payload[key] for key in keys if payload.get(key) not in (None, [], "")}


def _severity(value: Any) -> str:
    """The alert's severity; the four values are PagerDuty's own four."""
    try:
        return Severity(str(value)).value
    except ValueError:
        return Severity.ERROR.value


def _source(payload: Mapping[str, Any]) -> str:
    """The affected system (PagerDuty asks for a host or service name): the first named."""
    systems = payload.get("affected_systems")
    named = [str(s) for s in systems if s] if isinstance(systems, list) else []
    return named[0] if named else "notifier"


def event_body(delivery: Delivery, routing_key: str, *, link: str | None = None) -> bytes:
    """The Events API v2 JSON for one delivery: trigger with a payload, else key and action."""
    data = delivery.payload
    event = DeliveryEvent(delivery.event_type)
    if event is DeliveryEvent.ENDPOINT_TEST:
        dedup_key = f"notifier-endpoint-test-{data.get('endpoint_id')}"
        data = {"title": str(data.get("message", "Test event")), "severity": "info"}
        summary = f"[notifier] {data['title']}: sent from the Channels page; resolve it here."
    else:
        dedup_key = str(data.get("fingerprint") or f"notifier-alert-{delivery.alert_id}")
        summary = f"{data.get('alert_type', 'alert')}: {data.get('title', '')}"
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": event_action(event),
        "dedup_key": dedup_key[:DEDUP_KEY_MAX],
    }
    if body["event_action"] == "trigger":
        body["payload"] = {
            "summary": clip(summary, SUMMARY_MAX),
            "source": clip(_source(data), FIELD_MAX),
            "severity": _severity(data.get("severity")),
            "timestamp": delivery.occurred_at.isoformat().replace("+00:00", "Z"),
            "component": clip(str(data.get("alert_type") or "notifier"), FIELD_MAX),
            "class": clip(str(event), FIELD_MAX),
            "custom_details": _details(data),
        }
        body["client"] = "notifier"
        if link:
            body["client_url"] = link
        links = _links(data, link)
        if links:
            body["links"] = links
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
