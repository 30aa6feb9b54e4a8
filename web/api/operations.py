"""Declared operations: each route names its query, body and response schemas once.

The same declaration parses and validates the request, shapes the response, and becomes an
entry of the OpenAPI document, so the document cannot drift from what the code accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Protocol, TypeVar

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from notifier import KeysetPage
from notifier.validation import INT32_MAX

from .errors import ApiError
from .jsonbody import RepeatedKeyError, check_body
from .schemas import ErrorOut

Row = TypeVar("Row")
PageT = TypeVar("PageT", bound=BaseModel)


class _PageQuery(Protocol):
    skip: int
    limit: int


def found(row: Row | None, what: str, row_id: int) -> Row:
    """``row``, or a 404 naming what was looked for."""
    if row is None:
        raise ApiError(404, f"no {what} with id {row_id}")
    return row


def page_of(
    page: type[PageT],
    items: Sequence[BaseModel],
    found: KeysetPage[Any] | int,
    query: _PageQuery,
) -> PageT:
    """One page of a list in the API's envelope: items, total, skip, limit, next cursor.

    ``found``: a keyset page (capped total, next cursor), or an exact total for a list that
    pages by skip only.
    """
    exact = isinstance(found, int)
    return page.model_validate(
        {
            "items": items,
            "total": found if isinstance(found, int) else found.total,
            "total_exact": True if exact else found.total_exact,  # type: ignore[union-attr]
            "skip": query.skip,
            "limit": query.limit,
            "next_cursor": None if exact else found.next_cursor,  # type: ignore[union-attr]
        }
    )


def list_arguments(query: BaseModel) -> dict[str, Any]:
    """A list query as its service's keyword arguments.

    Each filter and paging field under
    its own name (the query models name them as the services do), a cursor or a skip but
    not both.
    """
    arguments = {name: getattr(query, name) for name in type(query).model_fields}
    if arguments.get("cursor") is not None and arguments.get("skip"):
        raise ApiError(
            422,
            "the query is not valid",
            details={"cursor": "use either cursor (from next_cursor) or skip, not both"},
        )
    return arguments


#: A view's answer: the body model (None for 204), the status, and extra headers.
Reply = tuple[BaseModel | None, int] | tuple[BaseModel | None, int, dict[str, str]]
View = Callable[..., Reply]

_PATH_PARAM = re.compile(r"\{(\w+)\}")

#: The errors every read can answer, and those a write adds (all in the one JSON shape).
READ_ERRORS: dict[int, type[BaseModel] | None] = {
    401: ErrorOut,
    422: ErrorOut,
    429: ErrorOut,
    503: ErrorOut,
}
WRITE_ERRORS: dict[int, type[BaseModel] | None] = {
    **READ_ERRORS,
    400: ErrorOut,
    403: ErrorOut,
    413: ErrorOut,
    415: ErrorOut,
}


@dataclass(frozen=True)
class Operation:
    """One method on one path, with the schemas of its input and output."""

    method: str
    path: str
    endpoint: str
    summary: str
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    responses: dict[int, type[BaseModel] | None]
    path_params: tuple[str, ...] = field(default=())


class OperationRegistry:
    """The operations of one blueprint, in declaration order."""

    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: dict[int, type[BaseModel] | None],
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
    ) -> Callable[[View], View]:
        """Declare and register a view; ``path`` uses OpenAPI ``{name}`` integer ids."""

        def decorate(view: View) -> View:
            params = tuple(_PATH_PARAM.findall(path))
            op = Operation(method, path, view.__name__, summary, query, body, responses, params)
            self.operations.append(op)
            # Integer converters keep /recent, /alerts, ... from ever matching an id route.
            rule = _PATH_PARAM.sub(r"<int:\1>", path)
            wrapped = _bind(op, view)
            self.blueprint.add_url_rule(rule, op.endpoint, wrapped, methods=[method])
            return view

        return decorate


def _bind(op: Operation, view: View) -> Callable[..., Response]:
    @wraps(view)
    def handler(**path_args: int) -> Response:
        if any(value > INT32_MAX for value in path_args.values()):
            # Beyond the id column's range: nothing is there (and the database is not asked).
            raise ApiError(404, "no such resource")
        kwargs: dict[str, Any] = dict(path_args)
        if op.query is not None:
            kwargs["query"] = _parse_query(op.query)
        elif request.args:
            raise ApiError(
                422,
                "the request is not valid",
                details={name: "unknown query parameter" for name in request.args},
            )
        if op.body is not None:
            kwargs["body"] = _parse_body(op.body)
        reply = view(**kwargs)
        model, status = reply[0], reply[1]
        headers = reply[2] if len(reply) == 3 else {}
        if model is None:
            return current_app.response_class(status=status, headers=headers)
        return current_app.response_class(
            model.model_dump_json(), status=status, headers=headers, mimetype="application/json"
        )

    return handler


def _parse_query(model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(request.args.to_dict())
    except PydanticError as exc:
        raise ApiError(422, "the query is not valid", details=_field_errors(exc)) from None


def _parse_body(model: type[BaseModel]) -> BaseModel:
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
        too_deep = check_body(text)
    except RepeatedKeyError as exc:
        raise ApiError(400, str(exc)) from None
    except ValueError:  # not UTF-8, or not JSON
        raise ApiError(400, "the body is not valid JSON") from None
    if too_deep:
        raise ApiError(422, "the request is not valid", details=too_deep)
    try:
        return model.model_validate_json(raw)
    except PydanticError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ApiError(400, "the body is not valid JSON") from None
        raise ApiError(422, "the request is not valid", details=_field_errors(exc)) from None


def _field_errors(exc: PydanticError) -> dict[str, str]:
    """Each bad top-level field and why, preferring our own sentences over type noise."""
    details: dict[str, str] = {}
    own: set[str] = set()
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field; see the API document for the accepted ones"
        if len(error["loc"]) > 1 and error["type"] != "value_error":
            message = f"{message} (at {'.'.join(str(part) for part in error['loc'][1:])})"
        if error["type"] == "value_error" and name not in own:
            details[name] = message
            own.add(name)
        else:
            details.setdefault(name, message)
    return details
