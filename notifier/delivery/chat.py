"""Chat payloads: Slack incoming webhooks (Block Kit) and Microsoft Teams Workflows.

Titles and messages come from failing jobs, so they are untrusted text: in Slack's mrkdwn
``<!channel>`` would page everyone and ``<https://x|y>`` would disguise a link, so ``&``,
``<`` and ``>`` are escaped as Slack documents; in Teams the text goes in ``TextRun``s, which
render no markdown. Lengths stay inside each platform's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..text import clip

__all__ = ["ChatMessage", "slack_payload", "teams_payload"]

# Slack: header text 150 characters, section text 3,000, a context element 3,000 (Block Kit
# reference); the fallback `text` is what notifications and screen readers show.
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELDS_MAX = 10
SLACK_FIELD_MAX = 2000


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """What a chat channel shows for one event: a title, a level, a text, facts, a link."""

    title: str
    level: str  # a priority or a severity, e.g. "critical"
    text: str
    facts: Sequence[tuple[str, str]] = field(default_factory=tuple)
    url: str | None = None
    #: (label, URL) of the alert's action links (``senders.action_links``), if any.
    actions: Sequence[tuple[str, str]] = field(default_factory=tuple)


def _buttons(message: ChatMessage) -> list[tuple[str, str]]:
    """The message's link buttons: "Open", then the alert's action links."""
    opened = [("Open", message.url)] if message.url else []
    return [*opened, *message.actions]


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: ChatMessage) -> dict[str, Any]:
    """A Block Kit message: header, text, facts, an "Open" button and the action buttons."""
    level = message.level.upper()
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(f"[{level}] {message.title}", SLACK_HEADER_MAX),
                "emoji": False,
            },
        }
    ]
    if message.text:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": clip(slack_escape(message.text), SLACK_SECTION_MAX),
                    "verbatim": True,
                },
            }
        )
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": clip(
                            f"*{slack_escape(name)}*\n{slack_escape(value)}", SLACK_FIELD_MAX
                        ),
                        "verbatim": True,
                    }
                    for name, value in list(message.facts)[:SLACK_FIELDS_MAX]
                ],
            }
        )
    buttons = _buttons(message)
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                    for label, url in buttons
                ],
            }
        )
    fallback = clip(slack_escape(f"[{level}] {message.title}"), SLACK_SECTION_MAX)
    return {"text": fallback, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _runs(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}


def teams_payload(message: ChatMessage) -> dict[str, Any]:
    """An Adaptive Card 1.4 in a ``message`` attachment, as Teams Workflows expects."""
    body: list[dict[str, Any]] = [
        _runs(f"[{message.level.upper()}] {message.title}", weight="Bolder", size="Medium"),
    ]
    if message.text:
        body.append(_runs(message.text))
    if message.facts:
        # FactSet values render markdown, so facts are plain runs too.
        body.extend(_runs(f"{name}: {value}", isSubtle=True) for name, value in message.facts)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    buttons = _buttons(message)
    if buttons:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": label, "url": url} for label, url in buttons
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
