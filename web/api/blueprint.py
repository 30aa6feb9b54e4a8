"""The API blueprint, its registry of operations, and the guard every request passes."""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from ..auth import CSRF_HEADER, SAFE_METHODS, bad_token_wait, count_bad_token, csrf_valid, identify
from ..host_login import sign_in_url
from ..state import API_PREFIX
from .errors import ApiError, handle_api_error
from .operations import OperationRegistry

api_blueprint = Blueprint("notifier_api", __name__, url_prefix=API_PREFIX)
api = OperationRegistry(api_blueprint)
api_blueprint.register_error_handler(Exception, handle_api_error)


@api_blueprint.before_request
def _guard() -> None:
    """Size limit, then credentials, then CSRF for cookie-authenticated writes."""
    limit = int(current_app.config["NOTIFIER_MAX_BODY_BYTES"])
    request.max_content_length = limit  # also bounds chunked bodies as they are read
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body is over {limit} bytes")

    caller = identify()
    if caller.admin is None:
        # Only callers without valid credentials are throttled: an address that sent many
        # bad tokens (or a proxy that many clients share) never locks out a valid one.
        wait = bad_token_wait()
        if wait:
            raise ApiError(
                429,
                f"too many failed authentication attempts; retry in {wait} seconds",
                headers={"Retry-After": str(wait)},
            )
        if caller.method == "bad-token":
            count_bad_token()
            message = "the bearer token is unknown, revoked, or its admin is deactivated"
        else:
            where = sign_in_url("/").split("?", 1)[0]
            message = f"sign in at {where} or send Authorization: Bearer <token>"
        raise ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="notifier"'})
    if (
        caller.method == "session"
        and request.method not in SAFE_METHODS
        and not csrf_valid(request.headers.get(CSRF_HEADER))
    ):
        raise ApiError(
            403,
            f"cookie-authenticated writes need the page's CSRF token in the {CSRF_HEADER} header",
            code="csrf_failed",
        )


_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@api_blueprint.route("/", methods=_METHODS)
@api_blueprint.route("/<notifier_rest:_rest>", methods=_METHODS)
def unmatched(_rest: str = "") -> NoReturn:
    """Unknown paths and wrong methods under the API prefix: the JSON 404 or 405.

    A catch-all of the blueprint (tried after every other rule, see ``routing``), so the
    API's errors are JSON without an app-wide error handler touching the host's 404s.
    """
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in _METHODS:
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:
            continue
        if rule.endpoint != request.endpoint:
            allowed.add(method)
    if allowed:
        raise MethodNotAllowed(valid_methods=sorted(allowed))
    raise NotFound()
