"""The one error shape of the API: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from notifier import AlreadyResolvedError, ValidationError, schema_missing

from ..outage import DATABASE_DOWN, RETRY_AFTER_SECONDS, SCHEMA_MISSING, log_schema_missing

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error to send as JSON: raise it anywhere in an API view."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.details = details
        self.headers = headers or {}


def error_response(error: ApiError) -> Response:
    """The JSON response for ``error``."""
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _from_http(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    headers: dict[str, str] = {}
    valid = getattr(exc, "valid_methods", None)
    if status == 405 and valid:
        headers["Allow"] = ", ".join(sorted(valid))
    message = {
        404: "no such resource; see the API document at " + url_for("notifier_api.openapi_json"),
        413: f"request body is over {current_app.config['NOTIFIER_MAX_BODY_BYTES']} bytes",
    }.get(status, exc.description or exc.name)
    return ApiError(status, message, headers=headers)


def handle_api_error(exc: Exception) -> Response:
    """Turn any exception raised under /api into the JSON error shape."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, ValidationError):
        return error_response(ApiError(422, "the request is not valid", details=exc.errors))
    if isinstance(exc, AlreadyResolvedError):
        return error_response(ApiError(409, str(exc)))
    if isinstance(exc, HTTPException):
        return error_response(_from_http(exc))
    if schema_missing(exc):  # before DATABASE_DOWN: SQLite says so with an OperationalError
        log_schema_missing(exc)
        return error_response(ApiError(503, SCHEMA_MISSING))
    if isinstance(exc, DATABASE_DOWN):
        current_app.logger.warning(
            "database unavailable in %s %s: %s", request.method, request.path, exc
        )
        return error_response(
            ApiError(
                503,
                f"the database is unavailable; retry in {RETRY_AFTER_SECONDS} seconds",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        )
    current_app.logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(ApiError(500, "internal error; the server log has the details"))


def _routing_error(exc: HTTPException) -> Response | HTTPException:
    # Unknown paths and wrong methods never reach a blueprint; answer them in JSON under /api.
    if request.path.startswith("/api/"):
        return handle_api_error(exc)
    return exc


def json_errors_under_api(app: Flask) -> None:
    """JSON 404/405 anywhere under ``/api/``, for the standalone app only.

    For the standalone app only (``create_app``), which owns every URL: 404/405 JSON
    anywhere under ``/api/``. ``NotifierWeb`` alone never registers app-wide handlers.
    """
    app.register_error_handler(404, _routing_error)
    app.register_error_handler(405, _routing_error)
