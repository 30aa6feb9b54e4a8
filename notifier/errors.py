"""Exceptions the core raises; the web layer maps each to one HTTP status."""

from __future__ import annotations


class NotifierError(Exception):
    """Base class of every error the notifier core raises on purpose."""


class ValidationError(NotifierError, ValueError):
    """One or more fields were rejected before anything was written.

    ``errors`` maps each bad field name to a sentence saying what is allowed.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{field}: {why}" for field, why in self.errors.items())
        super().__init__(f"invalid input: {detail}")


class AlreadyResolvedError(NotifierError):
    """The platform alert is already resolved; resolving it again would lose the first notes."""

    def __init__(self, alert_id: int) -> None:
        self.alert_id = alert_id
        super().__init__(f"platform alert {alert_id} is already resolved")


class ConfigurationError(NotifierError):
    """The environment does not describe a usable configuration; the message says what to set."""


class DuplicateAdminError(NotifierError):
    """An admin with this email (compared case-insensitively) already exists."""


class DeliveryRefusedError(NotifierError):
    """A delivery URL may not be used (scheme, credentials, or a non-public address)."""


class UnsubscribeLinkError(NotifierError):
    """An unsubscribe link that cannot be used; ``reason`` is invalid, expired or inactive."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
