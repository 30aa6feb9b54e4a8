"""URL rules that a host's own routes always win over, whatever the registration order.

Werkzeug tries a literal path segment before a converter, and converters by weight. The
notifier writes the first segment after its prefix as a converter that accepts only that
word (``/admin/<notifier_page(login):notifier_page>`` for ``/admin/login``), weighted to be
tried last. A host's ``/admin/login`` (a literal) or ``/admin/<int:id>`` (a lighter
converter) therefore matches first, whether it was added before ``init_app`` or after; the
notifier's route answers only paths the host does not serve. ``url_for`` is unchanged: the
word is the rule's default, and each blueprint drops it before calling the view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask
from werkzeug.routing import AnyConverter, BaseConverter, Map, PathConverter

F = TypeVar("F", bound=Callable[..., Any])

#: The view argument carrying the matched word; blueprints remove it before the view runs.
PAGE_ARG = "notifier_page"
_LAST = 10_000  # werkzeug tries lighter converters first; built-in ones weigh 50 to 200


class _Page(AnyConverter):
    """One fixed word, tried after every other rule of the same shape."""

    weight = _LAST


class _Index(BaseConverter):
    """The empty segment of ``<prefix>/``, tried after a host's own ``<prefix>/``."""

    regex = ""
    weight = _LAST

    def to_url(self, value: Any) -> str:
        return ""


class _Rest(PathConverter):
    """Any remaining path, tried last (the API's JSON 404 for unknown paths)."""

    weight = _LAST


CONVERTERS: dict[str, type[BaseConverter]] = {
    "notifier_page": _Page,
    "notifier_index": _Index,
    "notifier_rest": _Rest,
}


def add_converters(url_map: Map) -> None:
    """Make the notifier's converters known to ``url_map`` (names prefixed ``notifier_``)."""
    for name, converter in CONVERTERS.items():
        url_map.converters.setdefault(name, converter)


def guest_route(blueprint: Blueprint, path: str, **options: Any) -> Callable[[F], F]:
    """Like ``blueprint.route(path)``, but a host route of the same path wins (see above)."""
    first, _, rest = path.lstrip("/").partition("/")
    if first:
        rule = f"/<notifier_page({first!r}):{PAGE_ARG}>" + (f"/{rest}" if rest else "")
    else:
        rule = f"/<notifier_index:{PAGE_ARG}>"
    defaults = {**options.pop("defaults", {}), PAGE_ARG: first}
    return blueprint.route(rule, defaults=defaults, **options)


def drop_page_arg(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A blueprint's url_value_preprocessor: the view never sees the matched word."""
    if values is not None:
        values.pop(PAGE_ARG, None)


def register_on(app: Flask) -> None:
    """Add the converters before any of the notifier's rules is registered on ``app``."""
    add_converters(app.url_map)
