"""Where a notification points: built here with ``url_for``, not stored by the core."""

from __future__ import annotations

from flask import url_for

from notifier.models import AdminNotification


def notification_link(notification: AdminNotification) -> str | None:
    """The link a caller gave the notification, else the notifications page for its store.

    The core keeps only the store id; the page's URL (and its prefix) is the web's business.
    """
    if notification.action_url:
        return notification.action_url
    if notification.store_id is not None:
        return url_for("notifier_pages.notifications", store_id=notification.store_id)
    return None
