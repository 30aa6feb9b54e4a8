"""What the dispatcher needs to know that the rows do not say, and what a run did."""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from ..config import flag
from ..errors import ConfigurationError
from .mail import SmtpSettings

__all__ = ["CLAIM_LEASE", "DispatchReport", "DispatchSettings"]

#: How long a claim holds a row; a dispatcher killed mid-send is replaced after this.
CLAIM_LEASE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """What the dispatcher needs to know that the rows do not say."""

    allow_private: bool = False
    smtp: SmtpSettings | None = None
    base_url: str | None = None  # e.g. "https://admin.shop.example", for links
    pages_path: str = "/admin/notifications"
    unsubscribe_path: str = "/admin/unsubscribe"
    #: Where alert messages' action links point (``notifier.actions``); with ``base_url``.
    actions_path: str = "/admin/act"
    #: The action links' signing key, read from the database once per dispatch run
    #: (:func:`~notifier.delivery.senders.with_action_key`); None: messages carry no links.
    action_key: str | None = field(default=None, repr=False)
    emails_per_hour: int = 20
    slack_interval: float = 1.0
    batch_size: int = 20
    #: How long a claim holds a row; a dispatcher killed mid-send is replaced after this.
    #: A batch claimed ahead (while the one before sends) is claimed afresh before it
    #: sends once half of this has passed; rows another dispatcher took are dropped.
    claim_lease: timedelta = CLAIM_LEASE
    #: Sends whose attempt is not recorded yet, at most: the database round trips of one
    #: send overlap the next sends, and attempts waiting are recorded together. A crash or
    #: a database cut re-sends at most this many deliveries (same webhook-id); 1 records
    #: each send before the next.
    in_flight: int = 16
    #: Threads sending at once, each to its own URLs (one URL's deliveries go in order).
    senders: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DispatchSettings:
        """Read the delivery settings (``NOTIFIER_SMTP_URL`` and friends) from the environment.

        | variable                        | meaning                                          |
        |---------------------------------|--------------------------------------------------|
        | NOTIFIER_SMTP_URL               | smtp://, smtp+starttls:// or smtps://user@host:port |
        | NOTIFIER_SMTP_PASSWORD          | the SMTP password (kept out of the URL)          |
        | NOTIFIER_MAIL_FROM              | the From address (needed with NOTIFIER_SMTP_URL) |
        | NOTIFIER_PUBLIC_URL             | the admin's base URL, for links in messages      |
        | NOTIFIER_EMAILS_PER_HOUR        | per admin; the rest go out as one summary (20)   |
        | NOTIFIER_DELIVERY_ALLOW_PRIVATE | true: allow http and private addresses (dev only) |
        """
        env = os.environ if environ is None else environ
        smtp_url = (env.get("NOTIFIER_SMTP_URL") or "").strip()
        smtp = None
        if smtp_url:
            sender = (env.get("NOTIFIER_MAIL_FROM") or "").strip()
            if not sender:
                raise ConfigurationError(
                    "NOTIFIER_SMTP_URL is set but NOTIFIER_MAIL_FROM is not; "
                    "set it to the address emails come from, e.g. notifier@shop.example"
                )
            smtp = SmtpSettings.from_url(
                smtp_url, sender=sender, password=env.get("NOTIFIER_SMTP_PASSWORD") or None
            )
        per_hour = (env.get("NOTIFIER_EMAILS_PER_HOUR") or "20").strip()
        if not per_hour.isdigit() or int(per_hour) < 1:
            raise ConfigurationError(
                f"NOTIFIER_EMAILS_PER_HOUR={per_hour!r} must be a whole number of at least 1"
            )
        base_url = (env.get("NOTIFIER_PUBLIC_URL") or "").strip() or None
        if base_url is not None and urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError(
                f"NOTIFIER_PUBLIC_URL={base_url!r} must be an http(s) URL such as "
                "https://admin.shop.example"
            )
        return cls(
            allow_private=flag(env, "NOTIFIER_DELIVERY_ALLOW_PRIVATE"),
            smtp=smtp,
            base_url=base_url,
            emails_per_hour=int(per_hour),
        )


@dataclass(slots=True)
class DispatchReport:
    """What one run did, by outcome."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Batches claimed (a run of :func:`dispatch_batches` that stops at its bound says so).
    batches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: str, n: int = 1) -> None:
        """Count ``n`` deliveries that ended this run as ``result`` (from any thread)."""
        with self._lock:
            self.counts[result] += n

    @property
    def total(self) -> int:
        """How many deliveries this run handled."""
        return sum(self.counts.values())
