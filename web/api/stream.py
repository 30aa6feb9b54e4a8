"""GET <api>/stream: Server-Sent Events of new notifications, unread counts and alert changes.

Authenticated by the blueprint's guard like every API route (session cookie or bearer
token). Every batch ends with an ``unread`` event whose ``id`` is a replayable position;
a client that reconnects with ``Last-Event-ID`` first gets what it missed, read from the
database, so nothing is lost across a reconnect or a server restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Response, current_app, request, stream_with_context

from notifier import Position

from ..links import notification_link
from ..live import Batch, TooManyStreams, drain, replay, sse
from ..state import app_state, close_session
from .blueprint import api_blueprint
from .errors import ApiError
from .schemas import AlertOut, NotificationOut


def _render(batch: Batch) -> str:
    parts = []
    for notification in batch.notifications:
        out = NotificationOut.model_validate(notification)
        out.action_url = notification_link(notification)
        parts.append(sse("notification", out.model_dump_json()))
    for alert in batch.alerts:
        parts.append(sse("alert", AlertOut.model_validate(alert).model_dump_json()))
    # Last, with the id: a client cut off mid-batch replays the whole batch.
    count = f'{{"unread_count": {int(batch.unread_count)}}}'
    parts.append(sse("unread", count, str(batch.position)))
    return "".join(parts)


@api_blueprint.get("/stream")
def stream() -> Response:
    """Open the event stream (``text/event-stream``)."""
    state = app_state()
    # The stream holds no database connection: the guard's session goes back to the pool.
    close_session()
    if state.host_session is not None:
        state.host_session().close()
    config = current_app.config
    try:
        subscriber = state.hub.subscribe()
    except TooManyStreams as exc:
        raise ApiError(503, f"{exc}; poll /recent instead", headers={"Retry-After": "30"}) from exc
    since = Position.parse(request.headers.get("Last-Event-ID") or request.args.get("since"))
    heartbeat = float(config["NOTIFIER_STREAM_HEARTBEAT_SECONDS"])
    # Streams end after a while so the browser reconnects and is authenticated again: a
    # deactivated admin or a revoked token stops receiving within that time.
    until = time.monotonic() + float(config["NOTIFIER_STREAM_MAX_SECONDS"])
    retry_ms = int(config["NOTIFIER_STREAM_RETRY_MS"])

    def events() -> Iterator[str]:
        try:
            first, _ = replay(state.database, since)
            yield f"retry: {retry_ms}\n\n" + _render(first)
            for batch in drain(subscriber, heartbeat=heartbeat, until=until):
                yield ": heartbeat\n\n" if batch is None else _render(batch)
        finally:
            state.hub.unsubscribe(subscriber)

    response = Response(stream_with_context(events()), mimetype="text/event-stream")
    # nginx buffers proxied responses unless told not to; an event must leave at once.
    response.headers["X-Accel-Buffering"] = "no"
    return response
