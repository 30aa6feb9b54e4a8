"""The admin pages: the notifications page (two tabs) and the header bell's settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from notifier import (
    AlertType,
    NotificationType,
    Priority,
    Severity,
    admin_notification_service,
    get_statistics,
    platform_alert_service,
    utcnow,
)
from notifier.health import root_cause_titles
from notifier.models import AdminUser
from notifier.retry import RETRY_ALL_LIMIT, RetrySummary, alert_summaries, notification_summaries
from notifier.validation import SKIP_MAX, is_safe_url

from .api.schemas import AlertQuery, NotificationQuery
from .auth import csrf_token, login_required
from .chart import daily_chart
from .host_login import sign_in_url
from .links import notification_link
from .routing import guest_route
from .state import ADMIN_PREFIX, app_timezone, db_session

PER_PAGE = 25

pages_blueprint = Blueprint(
    "notifier_pages", __name__, url_prefix=ADMIN_PREFIX, template_folder="templates"
)


@dataclass
class Listing:
    """One page of a list, with what the pager needs."""

    items: list[Any]
    total: int
    page: int
    pages: int | None  # None when the total is a lower bound ("10,000+")
    prev_url: str | None = None
    next_url: str | None = None
    total_exact: bool = True

    @property
    def total_text(self) -> str:
        """The total as people read it: "1,234", or "10,000+" past the counting cap."""
        return count_text(self.total, self.total_exact)


@dataclass
class Filters:
    """The filters read from the query string by the API's own rules (``query`` model).

    A value those rules refuse is dropped with a notice, so a hand-edited URL shows the
    unfiltered list and says why instead of failing.
    """

    query: type[BaseModel]
    values: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def get(self, name: str) -> Any:
        """The parameter ``name`` as the API would read it, or None when absent or refused."""
        raw = request.args.get(name, "").strip()
        value = None
        if raw:
            try:
                value = getattr(self.query.model_validate({name: raw}), name)
            except PydanticError as exc:
                label = name.replace("_", " ")
                if exc.errors()[0]["type"] == "enum":
                    self.notices.append(f"Ignored unknown {label} {raw!r}.")
                else:
                    why = exc.errors()[0]["msg"].removeprefix("Input should be ")
                    self.notices.append(f"Ignored {label} {raw!r}: it should be {why}.")
        # The template and the pager links want the query-string form back ("true", "high").
        if isinstance(value, bool):
            self.values[name] = "true" if value else "false"
        else:
            self.values[name] = getattr(value, "value", value)
        return value

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list."""
        return any(v is not None for v in self.values.values())


class PageQuery(BaseModel):
    """The page number, within the deepest page the API's ``skip`` reaches."""

    page: Annotated[int, Field(ge=1, le=SKIP_MAX // PER_PAGE + 1)] = 1


def page_number() -> int:
    """The ``page`` query parameter, 1 when absent or out of range."""
    raw = request.args.get("page", "").strip()
    try:
        return PageQuery.model_validate({"page": raw or 1}).page
    except PydanticError:
        return 1


def listing(
    items: list[Any],
    total: int,
    page: int,
    filters: Filters,
    view: str = ".notifications",
    *,
    exact: bool = True,
    more: bool | None = None,
) -> Listing:
    """A page of ``items`` with pager links to ``view`` that keep the accepted filters.

    ``exact=False``: ``total`` is a lower bound ("10,000+"), so there is no last page and
    ``more`` (a next cursor exists) says whether an older page follows.
    """
    pages = max(1, math.ceil(total / PER_PAGE)) if exact else None
    # The pager links carry only the filters that were accepted (and the tab): url_for treats
    # "_external", "_method"... as instructions, and a refused value would be refused again.
    args: dict[str, Any] = {k: v for k, v in filters.values.items() if v is not None}
    if request.args.get("tab") == "alerts":
        args["tab"] = "alerts"
    result = Listing(items, total, page, pages, total_exact=exact)
    if page > 1:
        result.prev_url = url_for(view, **(args | {"page": page - 1}))
    if more if more is not None else (pages is not None and page < pages):
        result.next_url = url_for(view, **(args | {"page": page + 1}))
    return result


def enum_values(enum_cls: Any) -> list[str]:
    """The values of an enum, in order, for a select's options."""
    return [member.value for member in enum_cls]


def admin_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    """Each admin's name as the header names the signed-in one: display name, else email."""
    return {
        user_id: name or email
        for user_id, name, email in session.execute(
            select(AdminUser.id, AdminUser.display_name, AdminUser.email).where(
                AdminUser.id.in_(user_ids)
            )
        ).tuples()
    }


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
    now = utcnow()
    tab = "alerts" if request.args.get("tab") == "alerts" else "notifications"
    filters = Filters(NotificationQuery if tab == "notifications" else AlertQuery)
    page = page_number()
    skip = (page - 1) * PER_PAGE
    notifications = alerts = None
    retries: dict[int, RetrySummary] = {}
    user_ids: set[int] = set()
    if tab == "notifications":
        found = admin_notification_service.page_notifications(
            session,
            priority=filters.get("priority"),
            type=filters.get("type"),
            is_read=filters.get("is_read"),
            store_id=filters.get("store_id"),
            skip=skip,
            limit=PER_PAGE,
        )
        notifications = listing(
            found.items,
            found.total,
            page,
            filters,
            exact=found.total_exact,
            more=found.next_cursor is not None,
        )
        user_ids = {n.read_by_user_id for n in found.items if n.read_by_user_id is not None}
        retries = notification_summaries(session, found.items)
        held_ids = {n.held_back_by_id for n in found.items if n.held_back_by_id is not None}
    else:
        listed = platform_alert_service.page_alerts(
            session,
            alert_type=filters.get("alert_type"),
            severity=filters.get("severity"),
            is_resolved=filters.get("is_resolved"),
            snoozed=bool(filters.get("snoozed")),
            acknowledged=filters.get("acknowledged"),
            owner=filters.get("owner"),
            skip=skip,
            limit=PER_PAGE,
        )
        alerts = listing(
            listed.items,
            listed.total,
            page,
            filters,
            exact=listed.total_exact,
            more=listed.next_cursor is not None,
        )
        people = (
            user_id
            for a in listed.items
            for user_id in (a.resolved_by_user_id, a.acknowledged_by_user_id)
        )
        user_ids = {user_id for user_id in people if user_id is not None}
        retries = alert_summaries(session, listed.items)
        held_ids = {a.held_back_by_id for a in listed.items if a.held_back_by_id is not None}
    users = admin_names(session, user_ids)
    held_by = root_cause_titles(session, held_ids)
    return render_template(
        "notifier/notifications.html",
        tab=tab,
        now=now,
        rendered_at=now.isoformat(),
        stats=get_statistics(session, tz=zone),
        chart=daily_chart(admin_notification_service.get_daily_counts(session, days=14, tz=zone)),
        filters=filters.values | {"active": filters.active},
        notices=filters.notices,
        options={
            "priority": enum_values(Priority),
            "type": enum_values(NotificationType),
            "severity": enum_values(Severity),
            "alert_type": enum_values(AlertType),
        },
        notifications=notifications,
        alerts=alerts,
        users=users,
        held_by=held_by,
        api_base=url_for("notifier_api.list_notifications"),
        link_of=notification_link,
        retries=retries,
        retry_limit=RETRY_ALL_LIMIT,
    )


@pages_blueprint.app_template_global("notifier_count")
def count_text(count: int, exact: bool = True) -> str:
    """A count as people read it: "1,234", or "1,000+" when counting stopped at its cap.

    The same text as ``countText`` in ``static/notifier/api.js`` (live updates).
    """
    return f"{count:,}" + ("" if exact else "+")


@pages_blueprint.app_template_filter("notifier_safe_url")
def _safe_url(url: str | None) -> bool:
    return bool(url) and is_safe_url(str(url))


@pages_blueprint.app_template_global("notifier_bell")
def notifier_bell() -> dict[str, Any]:
    """What the header bell partial needs, in the notifier's page or a host's."""
    return {
        "api_base": url_for("notifier_api.list_notifications"),
        "stream_url": url_for("notifier_api.stream"),
        "login_url": sign_in_url(request.path),
        "page_url": url_for("notifier_pages.notifications"),
        "poll_interval_ms": current_app.config.get("NOTIFIER_POLL_INTERVAL_MS", 60_000),
        "csrf_token": csrf_token(),
    }
