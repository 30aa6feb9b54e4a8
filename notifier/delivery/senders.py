"""What each channel sends, and the sending; each send ends in an :class:`Outcome`.

Signed webhooks, Slack, Teams and PagerDuty over HTTP (``egress``, checked at use), Apprise
URLs through Apprise, emails over SMTP.
"""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from ..actions import ACTIONS, action_key, sign_action
from ..db import Database
from ..enums import DeliveryChannel, DeliveryEvent
from ..errors import DeliveryRefusedError
from ..models import Delivery, DeliveryEndpoint
from ..preferences.rules import Event, is_required
from ..types import utcnow
from . import apprise, egress, pagerduty, unsubscribe
from .attempts import Outcome, classify
from .chat import ChatMessage, slack_payload, teams_payload
from .mail import MailContent, alert_root_message_id, compose, list_id, send
from .settings import DispatchSettings
from .webhooks import envelope, signed_headers

__all__ = [
    "Mail",
    "action_links",
    "quiet_content",
    "send_apprise",
    "send_http",
    "send_mail",
    "single_mail",
    "summary_content",
    "unsubscribe_url",
    "with_action_key",
    "with_unsubscribe",
]


def _link(settings: DispatchSettings, delivery: Delivery) -> str | None:
    if settings.base_url is None:
        return None
    tab = "?tab=alerts" if delivery.alert_id is not None else ""
    return settings.base_url.rstrip("/") + settings.pages_path + tab


#: The alert events whose messages offer "Acknowledge", "Snooze 1 h" and "Resolve".
_ACTIONABLE = frozenset(
    {
        DeliveryEvent.ALERT_OPENED,
        DeliveryEvent.ALERT_REGRESSED,
        DeliveryEvent.ALERT_ESCALATED,
        DeliveryEvent.ALERT_REMINDER,
    }
)


def with_action_key(database: Database, settings: DispatchSettings) -> DispatchSettings:
    """``settings`` carrying the action links' key (read once per run; made on first use)."""
    if settings.base_url is None or settings.action_key is not None:
        return settings
    with database.session_scope(immediate=True) as db:
        return replace(settings, action_key=action_key(db))


def action_links(settings: DispatchSettings, delivery: Delivery) -> list[tuple[str, str]]:
    """(label, URL) of the action links a message about an open alert carries, or none.

    An email's links are bound to its recipient admin; a Slack or Teams message's to its
    endpoint (whoever confirms signs in). Every renderer shows these, in this order.
    """
    key, alert_id = settings.action_key, delivery.alert_id
    if key is None or settings.base_url is None or alert_id is None:
        return []
    if delivery.event_type not in _ACTIONABLE:
        return []
    if delivery.channel is DeliveryChannel.EMAIL and delivery.recipient_user_id is not None:
        source, bound_to = "email", delivery.recipient_user_id
    elif delivery.channel in (DeliveryChannel.SLACK, DeliveryChannel.TEAMS):
        assert delivery.endpoint_id is not None
        source, bound_to = delivery.channel.value, delivery.endpoint_id
    else:
        return []
    base = settings.base_url.rstrip("/") + settings.actions_path
    now = utcnow()
    return [
        (label, f"{base}/{sign_action(key, alert_id, action, source, bound_to, now=now)}")
        for action, label in ACTIONS.items()
    ]


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
        held = payload.get("held_back")
        if isinstance(held, dict):  # a root cause's summary of what it held back
            titles = "; ".join(str(item.get("title", "")) for item in held.get("items", [])[:5])
            alerts, notes = held.get("alerts", 0), held.get("notifications", 0)
            said = f"{alerts} alert(s), {notes} notification(s)"
            facts.append(("Held back", f"{said}: {titles}" if titles else said))
    elif payload.get("store_id") is not None:
        facts.append(("Store", str(payload["store_id"])))
    # Who answers for it and how (an alert's own fields, a notification's metadata).
    about = payload if delivery.alert_id is not None else payload.get("notification_metadata")
    if isinstance(about, dict):
        if about.get("escalation"):
            facts.append(("Escalation", str(about["escalation"].get("label", ""))))
        facts.extend((label, str(about[key])) for label, key in _OWNERSHIP if about.get(key))
    return facts


_OWNERSHIP = (("Owner", "owner"), ("Runbook", "runbook"))


def _chat_message(settings: DispatchSettings, delivery: Delivery) -> ChatMessage:
    level, kind, title, text = _headline(delivery)
    return ChatMessage(
        title=f"{kind}: {title}",
        level=level,
        text=text,
        facts=_facts(delivery),
        url=_link(settings, delivery),
        actions=action_links(settings, delivery),
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
    if endpoint.channel is DeliveryChannel.PAGERDUTY:
        if not endpoint.secret:
            raise DeliveryRefusedError("the PagerDuty endpoint has no routing key")
        body = pagerduty.event_body(delivery, endpoint.secret, link=_link(settings, delivery))
        return body, {"content-type": "application/json"}
    chat = _chat_message(settings, delivery)
    data = slack_payload(chat) if endpoint.channel is DeliveryChannel.SLACK else teams_payload(chat)
    return json.dumps(data).encode(), {"content-type": "application/json"}


def send_http(
    client: egress.Client,
    delivery: Delivery,
    endpoint: DeliveryEndpoint,
    settings: DispatchSettings,
    now: datetime,
) -> Outcome:
    """POST one webhook, Slack, Teams or PagerDuty message; checked at use, never raises."""
    started = time.monotonic()
    try:
        body, headers = _http_request(delivery, endpoint, settings, now)
        response = client.post(endpoint.url, body, headers, allow_private=settings.allow_private)
    except DeliveryRefusedError as exc:
        return Outcome("failed", time.monotonic() - started, error_class="Refused", error=str(exc))
    except Exception as exc:  # network errors, timeouts, TLS: the receiver may come back
        return Outcome(
            "retry", time.monotonic() - started, error_class=type(exc).__name__, error=_short(exc)
        )
    return classify(response, now)


def _apprise_message(settings: DispatchSettings, delivery: Delivery) -> apprise.AppriseMessage:
    chat = _chat_message(settings, delivery)
    lines = [chat.text, *(f"{name}: {value}" for name, value in chat.facts), chat.url or ""]
    return apprise.AppriseMessage(
        title=f"[{chat.level.upper()}] {chat.title}",
        body="\n".join(line for line in lines if line) or chat.title,
        level=chat.level,
        resolved=delivery.event_type is DeliveryEvent.ALERT_RESOLVED,
    )


def send_apprise(
    delivery: Delivery, endpoint: DeliveryEndpoint, settings: DispatchSettings
) -> Outcome:
    """Send one message through an Apprise endpoint's URL, once (the outbox retries)."""
    message = _apprise_message(settings, delivery)
    return apprise.send(endpoint.url, message, allow_private=settings.allow_private)


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
        actions=action_links(settings, delivery),
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


def summary_content(deliveries: Sequence[Delivery], settings: DispatchSettings) -> MailContent:
    """The one email that stands for those over the hourly cap."""
    return MailContent(
        subject=f"{len(deliveries)} more notifications",
        paragraphs=[
            f"You reached this hour's email limit ({settings.emails_per_hour}); "
            f"these {len(deliveries)} arrived meanwhile:",
            _listing(deliveries),
        ],
        url=_pages_url(settings),
    )


def quiet_content(deliveries: Sequence[Delivery], settings: DispatchSettings) -> MailContent:
    """The one email for those held by quiet hours and released together."""
    return MailContent(
        subject=f"{len(deliveries)} notifications during your quiet hours",
        paragraphs=[
            f"These {len(deliveries)} arrived while your quiet hours were on:",
            _listing(deliveries),
        ],
        url=_pages_url(settings),
    )


@dataclass(frozen=True, slots=True)
class Mail:
    """One email to send: the delivery it records, its content, its alert thread."""

    delivery_id: int
    content: MailContent
    alert_id: int | None = None
    opens_thread: bool = False


def single_mail(delivery: Delivery, settings: DispatchSettings) -> Mail:
    """The email for one delivery."""
    return Mail(
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


def with_unsubscribe(
    db: Session, settings: DispatchSettings, mail: Mail, user_id: int, about: list[Delivery]
) -> Mail:
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


def send_mail(settings: DispatchSettings, mail: Mail, to: str) -> Outcome:
    """Send one email to ``to`` over SMTP; never raises."""
    if settings.smtp is None:
        return Outcome("failed", error_class="NotConfigured", error="NOTIFIER_SMTP_URL is not set")
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
        return Outcome(
            "failed", time.monotonic() - started, error_class=type(exc).__name__, error=_short(exc)
        )
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(
            "retry", time.monotonic() - started, error_class=type(exc).__name__, error=_short(exc)
        )
    return Outcome("succeeded", time.monotonic() - started)
