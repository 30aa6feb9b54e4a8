"""Email: SMTP settings from one URL, and messages that thread one alert per conversation.

Threading follows RFC 5322 as mail clients read it: every email about one alert episode (one
alert row, from opening to resolution) carries the same subject, the first one's
``Message-ID`` is derived from the alert id (so any process can compute it), and each later
email names it in ``In-Reply-To`` and ``References``. The occurrence count lives in the body,
never in the subject, so the subject never changes under the client.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote, urlsplit

from ..actions import ACTION_LINK_LIFETIME
from ..errors import ConfigurationError
from ..types import utcnow

__all__ = [
    "MailContent",
    "SmtpSettings",
    "alert_root_message_id",
    "compose",
    "list_id",
    "send",
    "send_many",
]

SMTP_TIMEOUT = 15.0
_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to send: host, port, security, login, and the From address."""

    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    sender: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str, *, sender: str, password: str | None = None) -> SmtpSettings:
        """Read ``smtp://``, ``smtp+starttls://`` or ``smtps://user@host:port``.

        ``password`` (from the environment) wins over one written in the URL.
        """
        parts = urlsplit(url)
        security = _SCHEMES.get(parts.scheme)
        if security is None or not parts.hostname:
            raise ConfigurationError(
                f"NOTIFIER_SMTP_URL must look like smtp+starttls://user@host:587 "
                f"(schemes: {', '.join(_SCHEMES)})"
            )
        try:
            port = parts.port or {"plain": 25, "starttls": 587, "tls": 465}[security]
        except ValueError:
            raise ConfigurationError("NOTIFIER_SMTP_URL has a port that is not valid") from None
        if "@" not in sender:
            raise ConfigurationError("NOTIFIER_MAIL_FROM must be an email address")
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=password
            if password is not None
            else (unquote(parts.password) if parts.password else None),
        )

    def __repr__(self) -> str:  # never show the password
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"sender={self.sender!r}, username={self.username!r}, password=***)"
        )


@dataclass(frozen=True, slots=True)
class MailContent:
    """One email's words: a subject, paragraphs, facts as (label, value), and a link."""

    subject: str
    paragraphs: Sequence[str]
    facts: Sequence[tuple[str, str]] = ()
    url: str | None = None
    #: The one-click unsubscribe link (RFC 8058); None for required emails.
    unsubscribe_url: str | None = None
    #: (label, URL) of the alert's action links (``senders.action_links``), if any.
    actions: Sequence[tuple[str, str]] = ()


def list_id(settings: SmtpSettings) -> str:
    """The List-Id of every email the notifier sends from ``settings.sender``'s domain."""
    domain = settings.sender.rsplit("@", 1)[1]
    return f"notifier <notifier.{domain}>"


def alert_root_message_id(alert_id: int, domain: str) -> str:
    """The Message-ID of the first email about an alert episode: the thread's root."""
    return f"<notifier.alert.{alert_id}@{domain}>"


# The alert's action links (notifier.actions): in both parts, after "Open".
_ACTIONS_NOTE = (
    "Each link asks you to confirm, works once, and expires {days} days after this email."
)


def _actions_text(actions: Sequence[tuple[str, str]]) -> str:
    lines = [f"{label}: {url}" for label, url in actions]
    return "\n".join([*lines, _ACTIONS_NOTE.format(days=ACTION_LINK_LIFETIME.days)])


def _actions_html(actions: Sequence[tuple[str, str]]) -> str:
    links = " | ".join(
        f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'
        for label, url in actions
    )
    note = html.escape(_ACTIONS_NOTE.format(days=ACTION_LINK_LIFETIME.days))
    return f"<p>{links}</p><p><small>{note}</small></p>"


def _text(content: MailContent) -> str:
    blocks = list(content.paragraphs)
    if content.facts:
        blocks.append("\n".join(f"{label}: {value}" for label, value in content.facts))
    if content.url:
        blocks.append(f"Open: {content.url}")
    if content.actions:
        blocks.append(_actions_text(content.actions))
    if content.unsubscribe_url:
        blocks.append(f"Unsubscribe: {content.unsubscribe_url}")
    return "\n\n".join(blocks) + "\n"


def _html(content: MailContent) -> str:
    parts = [f"<p>{html.escape(p)}</p>" for p in content.paragraphs]
    if content.facts:
        rows = "".join(
            f"<tr><th align=left>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in content.facts
        )
        parts.append(f"<table>{rows}</table>")
    if content.url:
        parts.append(f'<p><a href="{html.escape(content.url, quote=True)}">Open</a></p>')
    if content.actions:
        parts.append(_actions_html(content.actions))
    if content.unsubscribe_url:
        link = html.escape(content.unsubscribe_url, quote=True)
        parts.append(f'<p><small><a href="{link}">Unsubscribe</a></small></p>')
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


def compose(
    content: MailContent,
    *,
    sender: str,
    recipients: Sequence[str],
    list_id: str,
    thread_root: str | None = None,
    is_root: bool = False,
) -> EmailMessage:
    """A multipart/alternative email (text and the same in HTML) with threading headers.

    ``thread_root`` is the conversation's root Message-ID: the email *is* the root when
    ``is_root``, otherwise it replies to it.
    """
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(utcnow())
    message["List-Id"] = list_id
    message["Auto-Submitted"] = "auto-generated"
    if content.unsubscribe_url:
        # RFC 8058: a mail client may POST "List-Unsubscribe=One-Click" to the URL.
        message["List-Unsubscribe"] = f"<{content.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    domain = Address(addr_spec=sender).domain
    if thread_root and is_root:
        message["Message-ID"] = thread_root
    else:
        message["Message-ID"] = make_msgid("notifier", domain=domain)
        if thread_root:
            message["In-Reply-To"] = thread_root
            message["References"] = thread_root
    message.set_content(_text(content))
    message.add_alternative(_html(content), subtype="html")
    return message


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=SMTP_TIMEOUT, context=context
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT)
    try:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
    except BaseException:
        client.close()
        raise
    return client


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message; raises smtplib/OSError errors for the caller's retry policy."""
    with _connect(settings) as client:
        client.send_message(message)


def send_many(settings: SmtpSettings, messages: Sequence[EmailMessage]) -> list[str | None]:
    """Send ``messages`` over one connection; per message, None when sent, else the error.

    A message the server refuses does not stop the others; a dropped connection is opened
    again once, after which the rest are reported failed.
    """
    results: list[str | None] = []
    client: smtplib.SMTP | None = None
    reconnected = False
    try:
        for message in messages:
            while True:
                try:
                    if client is None:
                        client = _connect(settings)
                    client.send_message(message)
                    results.append(None)
                    break
                except (smtplib.SMTPServerDisconnected, OSError) as exc:
                    client = None
                    if reconnected:
                        results.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                        break
                    reconnected = True
                except smtplib.SMTPException as exc:
                    results.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                    break
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    return results
