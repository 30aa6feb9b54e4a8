"""Slack and Teams payloads: untrusted text pings no one and stays within limits."""

from __future__ import annotations

import json

from notifier.delivery.chat import (
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    ChatMessage,
    slack_payload,
    teams_payload,
)

HOSTILE = ChatMessage(
    title="<!channel> import failed <https://evil.example|click> & more",
    level="critical",
    text="<!here> row 3: bad price <@U123>\n" + "x" * 5000,
    facts=[("Store", "<!everyone>"), ("Task", "import_products")],
    url="https://admin.example.com/admin/notifications",
)


def test_slack_escapes_every_control_sequence() -> None:
    payload = slack_payload(HOSTILE)
    # Everything Slack parses as mrkdwn: the fallback text and every block but the header.
    rendered = json.dumps([payload["text"], payload["blocks"][1:]])
    for mention in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<https://evil"):
        assert mention not in rendered
    assert "&lt;!channel&gt;" in payload["text"]
    header, section, facts, actions = payload["blocks"]
    # plain_text is never parsed for mentions, so the header shows the title as written.
    assert header["text"]["type"] == "plain_text"
    assert header["text"]["text"].startswith("[CRITICAL] <!channel> import failed")
    assert "&lt;!here&gt;" in section["text"]["text"]
    assert "*Store*\n&lt;!everyone&gt;" in [f["text"] for f in facts["fields"]]
    assert actions["elements"][0]["url"] == HOSTILE.url


def test_slack_texts_stay_within_block_kit_limits() -> None:
    payload = slack_payload(
        ChatMessage(title="t" * 500, level="error", text="&" * 3000)  # escapes to 15,000 chars
    )
    header, section = payload["blocks"]
    assert len(header["text"]["text"]) == SLACK_HEADER_MAX
    assert len(section["text"]["text"]) == SLACK_SECTION_MAX
    assert section["text"]["text"].endswith("…")


def test_teams_sends_an_adaptive_card_1_4_whose_text_is_not_markdown() -> None:
    payload = teams_payload(HOSTILE)
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    kinds = {block["type"] for block in card["body"]}
    assert kinds == {"RichTextBlock"}  # TextRuns render no markdown links or mentions
    assert card["body"][0]["inlines"][0]["text"].startswith("[CRITICAL] <!channel>")
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open", "url": HOSTILE.url}]
