"""Notification endpoints: list, create, read one, recent, unread count, mark read, delete."""

from __future__ import annotations

from flask import url_for

from notifier import admin_notification_service as service
from notifier.models import AdminNotification, AdminUser
from notifier.preferences import admin_bell_filter

from ..auth import current_admin
from ..links import notification_link
from ..state import db_session
from .blueprint import api
from .operations import READ_ERRORS, WRITE_ERRORS, Reply, found, list_arguments, page_of
from .schemas import (
    ErrorOut,
    MarkedOut,
    NotificationCreate,
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    RecentOut,
    RecentQuery,
    UnreadCountOut,
)

_ONE = {404: ErrorOut}


def _admin() -> AdminUser:
    admin = current_admin()
    assert admin is not None  # the blueprint guard let only admins in
    return admin


def _out(notification: AdminNotification) -> NotificationOut:
    # action_url is the link a caller gave, else (built here, not by the core) its store's list.
    out = NotificationOut.model_validate(notification)
    out.action_url = notification_link(notification)
    return out


@api.route(
    "GET",
    "",
    summary="List notifications, newest first, with filters and paging",
    query=NotificationQuery,
    responses={200: NotificationPage, **READ_ERRORS},
)
def list_notifications(query: NotificationQuery) -> Reply:
    """A filtered page of notifications."""
    result = service.page_notifications(db_session(), **list_arguments(query))
    return page_of(NotificationPage, [_out(item) for item in result.items], result, query), 200


@api.route(
    "POST",
    "",
    summary="Create a notification (200 with the existing one when dedup_key exists)",
    body=NotificationCreate,
    responses={201: NotificationOut, 200: NotificationOut, **WRITE_ERRORS},
)
def create_notification(body: NotificationCreate) -> Reply:
    """Create a notification, idempotently when a dedup_key is given."""
    db = db_session()
    notification, created = service.create_or_get_notification(
        db,
        type=body.type,
        title=body.title,
        message=body.message,
        priority=body.priority,
        action_required=body.action_required,
        action_url=body.action_url,
        metadata=body.notification_metadata,
        store_id=body.store_id,
        dedup_key=body.dedup_key,
    )
    db.commit()
    location = url_for(".get_notification", notification_id=notification.id)
    return (
        _out(notification),
        201 if created else 200,
        {"Location": location},
    )


@api.route(
    "GET",
    "/recent",
    summary="The newest unread notifications and the unread count (header bell), "
    "of the types the caller's in-app preferences keep",
    query=RecentQuery,
    responses={200: RecentOut, **READ_ERRORS},
)
def recent_notifications(query: RecentQuery) -> Reply:
    """Newest unread notifications for the dropdown."""
    db = db_session()
    only = admin_bell_filter(db, _admin().id)
    items = service.get_recent_notifications(db, limit=query.limit, only=only)
    count = service.get_unread_count(db, only=only)
    out = RecentOut(
        items=[_out(item) for item in items],
        unread_count=count.value,
        unread_count_exact=count.exact,
    )
    return out, 200


@api.route(
    "GET",
    "/unread-count",
    summary="How many notifications are unread (badge)",
    responses={200: UnreadCountOut, **READ_ERRORS},
)
def unread_count() -> Reply:
    """The unread count (of what lights the caller's bell, by their in-app preferences)."""
    db = db_session()
    count = service.get_unread_count(db, only=admin_bell_filter(db, _admin().id))
    return UnreadCountOut(unread_count=count.value, unread_count_exact=count.exact), 200


@api.route(
    "PUT",
    "/mark-all-read",
    summary="Mark every unread notification read by the caller",
    responses={200: MarkedOut, **WRITE_ERRORS},
)
def mark_all_read() -> Reply:
    """Mark all as read; returns how many changed."""
    db = db_session()
    marked = service.mark_all_as_read(db, user_id=_admin().id)
    db.commit()
    return MarkedOut(marked=marked), 200


@api.route(
    "GET",
    "/{notification_id}",
    summary="One notification",
    responses={200: NotificationOut, **READ_ERRORS, **_ONE},
)
def get_notification(notification_id: int) -> Reply:
    """One notification by id."""
    notification = service.get_notification(db_session(), notification_id)
    return _out(found(notification, "notification", notification_id)), 200


@api.route(
    "PUT",
    "/{notification_id}/read",
    summary="Mark one notification read (idempotent: the first reader and time are kept)",
    responses={200: NotificationOut, **WRITE_ERRORS, **_ONE},
)
def mark_read(notification_id: int) -> Reply:
    """Mark one notification read by the caller."""
    db = db_session()
    notification = service.mark_as_read(db, notification_id, user_id=_admin().id)
    notification = found(notification, "notification", notification_id)
    db.commit()
    return _out(notification), 200


@api.route(
    "DELETE",
    "/{notification_id}",
    summary="Delete one notification",
    responses={204: None, **WRITE_ERRORS, **_ONE},
)
def delete_notification(notification_id: int) -> Reply:
    """Delete one notification."""
    db = db_session()
    deleted = service.delete_notification(db, notification_id)
    found(deleted or None, "notification", notification_id)  # 404 when nothing was there
    db.commit()
    return None, 204
