"""Email through a real SMTP server (aiosmtpd on loopback): parts, headers, threading."""

from __future__ import annotations

import pytest

from notifier.delivery.mail import MailContent, SmtpSettings, alert_root_message_id, compose, send
from notifier.errors import ConfigurationError
from tests.notifier.conftest import MailSink


@pytest.fixture
def smtp(smtp_server: tuple[str, MailSink]) -> tuple[SmtpSettings, MailSink]:
    url, sink = smtp_server
    return SmtpSettings.from_url(url, sender="alerts@shop.example"), sink


CONTENT = MailContent(
    subject="[CRITICAL] integration: Letzshop API down",
    paragraphs=["The order sync failed 3 times.", "<script>alert(1)</script>"],
    facts=[("Occurrences", "3"), ("Store", "Acme & Co")],
    url="https://admin.example.com/admin/notifications?tab=alerts",
)


def test_an_alert_thread_is_one_conversation_in_a_real_smtp_server(
    smtp: tuple[SmtpSettings, MailSink],
) -> None:
    settings, sink = smtp
    root = alert_root_message_id(42, "shop.example")
    for is_root in (True, False, False):
        send(
            settings,
            compose(
                CONTENT,
                sender=settings.sender,
                recipients=["ops@shop.example", "cto@shop.example"],
                list_id="notifier alerts <alerts.notifier.shop.example>",
                thread_root=root,
                is_root=is_root,
            ),
        )
    first, second, third = sink.messages
    assert first["Message-ID"] == root
    assert "In-Reply-To" not in first
    for reply in (second, third):
        assert reply["In-Reply-To"] == root
        assert reply["References"] == root
        assert reply["Message-ID"] != root
    assert second["Message-ID"] != third["Message-ID"]
    assert {m["Subject"] for m in sink.messages} == {CONTENT.subject}
    assert first["List-Id"] == "notifier alerts <alerts.notifier.shop.example>"
    assert first["To"] == "ops@shop.example, cto@shop.example"


def test_text_and_html_parts_say_the_same_and_html_is_escaped(
    smtp: tuple[SmtpSettings, MailSink],
) -> None:
    settings, sink = smtp
    send(
        settings,
        compose(CONTENT, sender=settings.sender, recipients=["a@b.example"], list_id="x <x.y>"),
    )
    [message] = sink.messages
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    markup = message.get_body(("html",))
    assert text is not None and markup is not None
    plain, rich = text.get_content(), markup.get_content()
    assert "The order sync failed 3 times." in plain and "The order sync failed 3 times." in rich
    assert "Occurrences: 3" in plain and "<th align=left>Occurrences</th><td>3</td>" in rich
    assert "<script>" in plain and "<script>" not in rich and "&lt;script&gt;" in rich
    assert "Acme &amp; Co" in rich
    assert CONTENT.url is not None and CONTENT.url in plain


def test_smtp_url_forms_and_the_password_from_the_environment() -> None:
    settings = SmtpSettings.from_url(
        "smtp+starttls://mailer%40shop@mail.example:2525",
        sender="a@shop.example",
        password="s3cr3t",
    )
    assert (settings.host, settings.port, settings.security) == ("mail.example", 2525, "starttls")
    assert settings.username == "mailer@shop" and settings.password == "s3cr3t"
    assert "s3cr3t" not in repr(settings)
    assert SmtpSettings.from_url("smtps://mail.example", sender="a@b.example").port == 465
    with pytest.raises(ConfigurationError, match="smtp\\+starttls://"):
        SmtpSettings.from_url("http://mail.example", sender="a@b.example")
    with pytest.raises(ConfigurationError, match="NOTIFIER_MAIL_FROM"):
        SmtpSettings.from_url("smtp://mail.example", sender="nobody")
