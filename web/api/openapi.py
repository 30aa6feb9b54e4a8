"""The OpenAPI 3.1 document, generated from the declared operations and their schemas."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from flask import Response, current_app
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from notifier import __version__
from notifier.validation import INT32_MAX

from .blueprint import api, api_blueprint
from .operations import Operation
from .schemas import SchemaGenerator

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: queued for the dispatcher",
    204: "No content",
    400: "Malformed JSON",
    401: "Missing or bad credentials",
    403: "CSRF token missing or wrong (cookie-authenticated writes)",
    404: "No such resource",
    409: "Conflict: not possible in the resource's current state (the message says why)",
    413: "Body over the size limit",
    415: "Body is not JSON",
    422: "Validation failed; details name each bad field",
    429: "Too many failed attempts",
    503: "Database unavailable; retry after Retry-After seconds",
}


# The event stream is no JSON operation of the registry: described here by hand.
_STREAM: dict[str, Any] = {
    "operationId": "stream",
    "summary": "Server-Sent Events: new notifications, unread counts, alert changes",
    "description": (
        "Events `notification` and `alert` carry the object as in the JSON API; every batch "
        'ends with `unread` (`{"unread_count": N, "unread_count_exact": true}`, as '
        "`/unread-count` answers) whose `id` is a position. Reconnect "
        "with `Last-Event-ID` (or `?since=<id>`) to get what was missed (422 for a value the "
        "stream did not give). Heartbeat comments every 15 s; the stream ends after a few "
        "minutes so the client re-authenticates. "
        "503 with Retry-After when this process holds its maximum of streams: poll instead."
    ),
    "parameters": [
        {
            "name": "since",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
        }
    ],
    "responses": {
        "200": {
            "description": "OK",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "401": {"description": _STATUS_TEXT[401]},
        "422": {"description": "`Last-Event-ID` or `since` is not a position the stream gave"},
        "503": {"description": "Too many open streams, or the database is unavailable"},
    },
}


@cache
def openapi_document(version: str, cookie_name: str = "session") -> dict[str, Any]:
    """The API document: paths, parameters, bodies and responses from the schemas."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in api.operations:
        for model in (op.query, op.body):
            if model is not None:
                wanted.append((model, "validation"))
        wanted.extend((model, "serialization") for model in op.responses.values() if model)
    refs, definitions = models_json_schema(
        list(dict.fromkeys(wanted)), ref_template=_REF, schema_generator=SchemaGenerator
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        entry: dict[str, Any] = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "parameters": _parameters(op, schemas),
            "responses": {
                str(status): _response(status, refs[(model, "serialization")] if model else None)
                for status, model in sorted(op.responses.items())
            },
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(f"{api_blueprint.url_prefix}{op.path}", {})[op.method.lower()] = entry
    paths[f"{api_blueprint.url_prefix}/stream"] = {"get": _STREAM}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notifier admin API",
            "version": version,
            "description": (
                "Admin notifications and platform alerts. Authenticate with "
                "`Authorization: Bearer <token>` (see `notifier create-token`) or the session "
                "cookie of /admin/login plus the X-CSRF-Token header on writes. Every error is "
                '`{"error": {"code", "message", "details"}}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": cookie_name},
            },
        },
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
    }


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": INT32_MAX},
        }
        for name in op.path_params
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(
            ref_template=_REF, mode="validation", schema_generator=SchemaGenerator
        )
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": False, "schema": _not_null(prop)}
            )
        schemas.update(schema.get("$defs", {}))
    return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    # An absent query parameter is how a client says "no filter"; there is no null in a URL.
    variants = prop.get("anyOf")
    if not variants:
        return prop
    rest = [variant for variant in variants if variant != {"type": "null"}]
    merged = {key: value for key, value in prop.items() if key not in ("anyOf", "default")}
    if len(rest) == 1:
        merged.update(rest[0])
    else:
        merged["anyOf"] = rest
    return merged


def _response(status: int, ref: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "")}
    if ref is not None:
        response["content"] = {"application/json": {"schema": ref}}
    return response


@api_blueprint.route("/openapi.json", methods=["GET"])
def openapi_json() -> Response:
    """Serve the OpenAPI 3.1 document."""
    return current_app.response_class(
        json.dumps(openapi_document(__version__, current_app.config["SESSION_COOKIE_NAME"])),
        mimetype="application/json",
    )
