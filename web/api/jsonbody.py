"""Reading a JSON body strictly: no repeated keys, no nesting beyond the metadata limit.

pydantic's parser keeps the last of two equal keys and reports a body nested ~200 deep as
"not valid JSON"; both checks run here first, so a client learns what is actually wrong.
"""

from __future__ import annotations

import json
from typing import Any

from notifier.validation import METADATA_MAX_DEPTH, TOO_DEEP

#: The body object itself is one level; its metadata field may hold the limit below it.
MAX_BODY_DEPTH = METADATA_MAX_DEPTH + 1


class RepeatedKeyError(ValueError):
    """The body names the same key twice in one object."""


def too_deep_field(raw: str) -> str | None:
    """The top-level field whose value nests deeper than allowed ("body" if the body does).

    One pass over the text, without recursion, so no depth can exhaust the stack; strings are
    skipped, so brackets inside them do not count.
    """
    depth = 0
    in_string = escaped = False
    start = 0
    last_key = "body"
    for index, ch in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if depth == 1 and _followed_by_colon(raw, index + 1):  # a key of the body
                    try:
                        last_key = str(json.loads(raw[start : index + 1]))
                    except ValueError:
                        last_key = "body"
        elif ch == '"':
            in_string, start = True, index
        elif ch in "[{":
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return last_key
        elif ch in "]}":
            depth -= 1
    return None


def _followed_by_colon(raw: str, index: int) -> bool:
    while index < len(raw) and raw[index] in " \t\r\n":
        index += 1
    return index < len(raw) and raw[index] == ":"


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RepeatedKeyError(f"the body repeats the key {key!r} in one object")
        result[key] = value
    return result


def check_body(raw: str) -> dict[str, str] | None:
    """Field errors for a body nested too deep, or None; RepeatedKeyError or ValueError else.

    ``ValueError`` means the text is not JSON at all (the caller answers 400).
    """
    field = too_deep_field(raw)
    if field is not None:
        return {field: TOO_DEEP}
    try:
        json.loads(raw, object_pairs_hook=_refuse_repeats)
    except RecursionError:  # only if the scan above and the parser disagree on invalid text
        return {"body": TOO_DEEP}
    return None
