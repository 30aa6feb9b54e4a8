"""The admin pages: the notifications page (two tabs) and the header bell's settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from notifier import (
    AdminUser,
    AlertType,
    NotificationType,
    Priority,
    Severity,
    admin_notification_service,
    get_statistics,
    platform_alert_service,
)
from notifier.validation import is_safe_url

from .auth import csrf_token, login_required
from .chart import daily_chart
from .host_login import sign_in_url
from .routing import guest_route
from .state import ADMIN_PREFIX, app_timezone, db_session

PER_PAGE = 25
_LINK_PARAMS = frozenset(
    {"tab", "priority", "type", "is_read", "store_id", "severity", "alert_type", "is_resolved"}
)

pages_blueprint = Blueprint(
    "notifier_pages", __name__, url_prefix=ADMIN_PREFIX, template_folder="templates"
)


@dataclass
class Listing:
    """One page of a list, with what the pager needs."""

    items: list[Any]
    total: int
    page: int
    pages: int
    prev_url: str | None = None
    next_url: str | None = None


@dataclass
class Filters:
    """The filters read from the query string; unknown values are dropped with a notice."""

    values: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def choice(self, name: str, allowed: list[str]) -> str | None:
        """A query parameter that must be one of ``allowed``."""
        raw = request.args.get(name, "").strip()
        if raw and raw not in allowed:
            self.notices.append(f"Ignored unknown {name.replace('_', ' ')} {raw!r}.")
            raw = ""
        self.values[name] = raw or None
        return raw or None

    def flag(self, name: str) -> bool | None:
        """A ``true``/``false`` query parameter."""
        value = self.choice(name, ["true", "false"])
        return None if value is None else value == "true"

    def integer(self, name: str) -> int | None:
        """A non-negative integer query parameter."""
        raw = request.args.get(name, "").strip()
        if raw and not raw.isdigit():
            self.notices.append(f"Ignored {name.replace('_', ' ')} {raw!r}: not a number.")
            raw = ""
        value = int(raw) if raw else None
        self.values[name] = value
        return value

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list."""
        return any(v is not None for k, v in self.values.items() if k != "page")


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def _listing(items: list[Any], total: int, page: int) -> Listing:
    pages = max(1, math.ceil(total / PER_PAGE))
    # Only our own filters go into the pager links: url_for treats "_external", "_method"...
    # as instructions, and any other stray parameter is dropped rather than carried along.
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k in _LINK_PARAMS}
    listing = Listing(items, total, page, pages)
    if page > 1:
        listing.prev_url = url_for(".notifications", **(args | {"page": page - 1}))
    if page < pages:
        listing.next_url = url_for(".notifications", **(args | {"page": page + 1}))
    return listing


def _enum_values(enum_cls: Any) -> list[str]:
    return [member.value for member in enum_cls]


@guest_route(pages_blueprint, "/")
@login_required
def index() -> Response:
    """The admin home is the notifications page."""
    return redirect(url_for(".notifications"))


@guest_route(pages_blueprint, "/notifications")
@login_required
def notifications() -> str:
    """The notifications page: statistics, chart, and the tab and filters in the URL."""
    session = db_session()
    zone = app_timezone()
    tab = "alerts" if request.args.get("tab") == "alerts" else "notifications"
    filters = Filters()
    page = _page_number()
    skip = (page - 1) * PER_PAGE
    notifications = alerts = None
    user_ids: set[int] = set()
    if tab == "notifications":
        notes, total = admin_notification_service.get_notifications(
            session,
            priority=filters.choice("priority", _enum_values(Priority)),
            type=filters.choice("type", _enum_values(NotificationType)),
            is_read=filters.flag("is_read"),
            store_id=filters.integer("store_id"),
            skip=skip,
            limit=PER_PAGE,
        )
        notifications = _listing(notes, total, page)
        user_ids = {n.read_by_user_id for n in notes if n.read_by_user_id is not None}
    else:
        items, total = platform_alert_service.get_alerts(
            session,
            alert_type=filters.choice("alert_type", _enum_values(AlertType)),
            severity=filters.choice("severity", _enum_values(Severity)),
            is_resolved=filters.flag("is_resolved"),
            skip=skip,
            limit=PER_PAGE,
        )
        alerts = _listing(items, total, page)
        user_ids = {a.resolved_by_user_id for a in items if a.resolved_by_user_id is not None}
    users = dict(
        session.execute(select(AdminUser.id, AdminUser.email).where(AdminUser.id.in_(user_ids)))
        .tuples()
        .all()
    )
    return render_template(
        "notifier/notifications.html",
        tab=tab,
        stats=get_statistics(session, tz=zone),
        chart=daily_chart(admin_notification_service.get_daily_counts(session, days=14, tz=zone)),
        filters=filters.values | {"active": filters.active},
        notices=filters.notices,
        options={
            "priority": _enum_values(Priority),
            "type": _enum_values(NotificationType),
            "severity": _enum_values(Severity),
            "alert_type": _enum_values(AlertType),
        },
        notifications=notifications,
        alerts=alerts,
        users=users,
        api_base=url_for("notifier_api.list_notifications"),
    )


@pages_blueprint.app_template_filter("notifier_safe_url")
def _safe_url(url: str | None) -> bool:
    return bool(url) and is_safe_url(str(url))


@pages_blueprint.app_template_global("notifier_bell")
def notifier_bell() -> dict[str, Any]:
    """What the header bell partial needs, in the notifier's page or a host's."""
    return {
        "api_base": url_for("notifier_api.list_notifications"),
        "login_url": sign_in_url(request.path),
        "page_url": url_for("notifier_pages.notifications"),
        "poll_interval_ms": current_app.config.get("NOTIFIER_POLL_INTERVAL_MS", 60_000),
        "csrf_token": csrf_token(),
    }
