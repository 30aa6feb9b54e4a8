"""GET <api>/stream: Server-Sent Events of new notifications, unread counts and alert changes.

Authenticated by the blueprint's guard like every API route (session cookie or bearer
token). Every batch ends with an ``unread`` event whose ``id`` is a replayable position;
a client that reconnects with ``Last-Event-ID`` first gets what it missed, read from the
database, so nothing is lost across a reconnect or a server restart.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from flask import Response, current_app, request, stream_with_context

from notifier import BellFilter, Database, ValidationError, admin_notification_service
from notifier.live import Position
from notifier.preferences import admin_bell_filter

from ..auth import current_admin
from ..links import notification_link
from ..live import Batch, TooManyStreams, drain, replay, sse
from ..state import app_state, close_session
from .blueprint import api_blueprint
from .errors import ApiError
from .schemas import AlertOut, NotificationOut, UnreadCountOut


def _render(batch: Batch, only: BellFilter, database: Database) -> str:
    parts = []
    unread = batch.unread_count
    if only is not None:
        # This admin's bell leaves some types out (in-app preferences): their count is theirs.
        with database.session_scope() as db:
            unread = admin_notification_service.get_unread_count(db, only=only)
    for notification in batch.notifications:
        if only is not None and str(notification.priority) not in only.get(
            str(notification.type), frozenset()
        ):
            continue
        out = NotificationOut.model_validate(notification)
        out.action_url = notification_link(notification)
        parts.append(sse("notification", out.model_dump_json()))
    for alert in batch.alerts:
        parts.append(sse("alert", AlertOut.model_validate(alert).model_dump_json()))
    # Last, with the id: a client cut off mid-batch replays the whole batch.
    count = UnreadCountOut(unread_count=unread.value, unread_count_exact=unread.exact)
    parts.append(sse("unread", count.model_dump_json(), str(batch.position)))
    return "".join(parts)


def _since() -> Position | None:
    """Where the client left off: ``Last-Event-ID`` (a reconnect) or ``?since=``; 422 if bad."""
    for name, text in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("since", request.args.get("since")),
    ):
        if text:
            try:
                return Position.parse(text)
            except ValueError as exc:
                raise ValidationError({name: str(exc)}) from None
    return None


def _client_socket() -> socket.socket | None:
    """The client's connection, where the server shows it (gunicorn, werkzeug's server)."""
    for key in ("gunicorn.socket", "werkzeug.socket"):
        connection = request.environ.get(key)
        if isinstance(connection, socket.socket):
            return connection
    return None


@api_blueprint.get("/stream")
def stream() -> Response:
    """Open the event stream (``text/event-stream``)."""
    # Before subscribing: a refused request must not take one of the process's stream slots.
    since = _since()
    state = app_state()
    admin = current_admin()
    assert admin is not None  # the blueprint guard let only admins in
    # Read once per stream (streams end every few minutes, so a change applies soon), in a
    # session of its own: the request's is closed below and must not expire the admin.
    with state.database.session_scope() as db:
        only = admin_bell_filter(db, admin.id)
    # The stream holds no database connection: the guard's session goes back to the pool.
    close_session()
    if state.host_session is not None:
        state.host_session().close()
    config = current_app.config
    try:
        subscriber = state.hub.subscribe(_client_socket())
    except TooManyStreams as exc:
        raise ApiError(503, f"{exc}; poll /recent instead", headers={"Retry-After": "30"}) from exc
    heartbeat = float(config["NOTIFIER_STREAM_HEARTBEAT_SECONDS"])
    # Streams end after a while so the browser reconnects and is authenticated again: a
    # deactivated admin or a revoked token stops receiving within that time.
    until = time.monotonic() + float(config["NOTIFIER_STREAM_MAX_SECONDS"])
    retry_ms = int(config["NOTIFIER_STREAM_RETRY_MS"])

    def events() -> Iterator[str]:
        try:
            first, _ = replay(state.database, since)
            yield f"retry: {retry_ms}\n\n" + _render(first, only, state.database)
            for batch in drain(subscriber, heartbeat=heartbeat, until=until):
                yield ": heartbeat\n\n" if batch is None else _render(batch, only, state.database)
        finally:
            state.hub.unsubscribe(subscriber)

    response = Response(stream_with_context(events()), mimetype="text/event-stream")
    # Also when the body is never read (the server gave up first): the slot must come back.
    response.call_on_close(lambda: state.hub.unsubscribe(subscriber))
    # nginx buffers proxied responses unless told not to; an event must leave at once.
    response.headers["X-Accel-Buffering"] = "no"
    return response
