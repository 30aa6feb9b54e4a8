"""Apprise: one Apprise URL per endpoint reaches ntfy, Telegram, Discord, Pushover, ...

Apprise (the optional ``apprise`` extra) is the transport; the outbox keeps its guarantees:
the row, its retry schedule, the attempt log, disabling after days of failure. Apprise's own
retries are turned off (``retry`` is forced to 0 whatever the URL says), so one attempt
here is one attempt in the log.

What Apprise's answer allows: ``notify()`` says whether the service took the message
(``bool``; Apprise 2.3 wraps it in an ``AppriseResult`` whose status also tells a timeout
apart). It carries no HTTP status, no ``Retry-After`` and no line between a permanent
failure (a revoked token) and a passing one (a 503), so every failure is retried on the
outbox's schedule and a dead URL is found by the endpoint's failure streak, not at once.

The address rules (``egress``) apply where the URL names a host of the admin's choosing
(``json://``, ``ntfy://my.host/topic``, ``gotify://``, ...): TLS (the secure scheme,
``jsons://``, ``ntfys://``) and a public address, checked at save and again before each
send. Apprise then resolves and connects on its own, so unlike the other HTTP channels
the checked address is not pinned (a name that changes its answer in between is not
caught). Services at a fixed public API (Telegram, Discord, Pushover, ntfy.sh) name no host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import DeliveryRefusedError
from . import egress
from .attempts import Outcome

__all__ = ["INSTALL_HINT", "AppriseMessage", "display_url", "send", "url_problem"]

INSTALL_HINT = "Apprise is not installed; install the extra: pip install 'celery-notifier[apprise]'"
#: Seconds Apprise may take to connect, and then to read, per request.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0

_NOTIFY_TYPES = {
    "critical": "failure",
    "error": "failure",
    "high": "warning",
    "warning": "warning",
}


@dataclass(frozen=True, slots=True)
class AppriseMessage:
    """A title and a plain-text body, and how bad it is (a severity or a priority)."""

    title: str
    body: str
    level: str
    resolved: bool = False

    def notify_type(self) -> str:
        """Apprise's ``info``, ``success``, ``warning`` or ``failure`` for this message."""
        return "success" if self.resolved else _NOTIFY_TYPES.get(self.level, "info")


def _plugin(url: str) -> Any:
    """Apprise's service object for ``url``; DeliveryRefusedError when it is none."""
    try:
        import apprise
    except ImportError:
        raise DeliveryRefusedError(INSTALL_HINT) from None
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise DeliveryRefusedError(
            "Apprise does not recognise this URL (see its wiki for each service's URL)"
        )
    return plugin


def _target(plugin: Any) -> str | None:
    """The http(s) origin of a URL that names a host of the admin's choosing, or None."""
    host = getattr(plugin, "host", None)
    tokens = getattr(type(plugin), "template_tokens", {})
    if "host" not in tokens or not isinstance(host, str) or not host:
        return None
    if getattr(plugin, "mode", None) == "cloud":  # ntfy://topic: ntfy.sh, the name is a topic
        return None
    scheme = "https" if getattr(plugin, "secure", False) else "http"
    shown = f"[{host}]" if ":" in host else host
    port = getattr(plugin, "port", None)
    return f"{scheme}://{shown}{f':{port}' if port else ''}/"


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` cannot be an Apprise endpoint's URL (checked at save), or None."""
    try:
        target = _target(_plugin(url))
        if target is not None:
            egress.check_url(target, allow_private=allow_private)
    except DeliveryRefusedError as exc:
        return str(exc)
    return None


def display_url(url: str) -> str:
    """Only the scheme: an Apprise URL carries its service's credentials in every part."""
    return f"{urlsplit(url).scheme}://…"


def _quiet(plugin: Any) -> None:
    """One attempt, bounded in time: the outbox schedules the retries."""
    if hasattr(plugin, "retry"):
        plugin.retry = 0
    plugin.socket_connect_timeout = CONNECT_TIMEOUT
    plugin.socket_read_timeout = READ_TIMEOUT


def send(url: str, message: AppriseMessage, *, allow_private: bool) -> Outcome:
    """Send ``message`` through the Apprise URL ``url``, once; never raises."""
    started = time.monotonic()
    try:
        plugin = _plugin(url)
        target = _target(plugin)
        if target is not None:
            egress.check_at_send(target, allow_private=allow_private)
    except DeliveryRefusedError as exc:
        return Outcome("failed", time.monotonic() - started, error_class="Refused", error=str(exc))
    import apprise

    _quiet(plugin)
    sender = apprise.Apprise()
    sender.add(plugin)
    try:
        result = sender.notify(
            body=message.body,
            title=message.title,
            notify_type=message.notify_type(),
            # Untrusted text (from failing jobs): Apprise escapes it for a service that
            # renders HTML or Markdown, rather than passing markup through.
            body_format="text",
        )
    except Exception as exc:  # a plugin bug: the next attempt may fare better
        return Outcome(
            "retry",
            time.monotonic() - started,
            error_class=type(exc).__name__,
            error="Apprise raised",
        )
    took = time.monotonic() - started
    if result:
        return Outcome("succeeded", took)
    status = getattr(getattr(result, "status", None), "name", "FAILURE")
    return Outcome(
        "retry",
        took,
        error_class=f"Apprise{status.title()}",
        error=f"Apprise reported {status} (it gives no status code or reason)",
    )
