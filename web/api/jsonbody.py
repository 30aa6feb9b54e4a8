"""Reading a JSON body strictly: no repeated keys, no nesting beyond the metadata limit.

pydantic's parser keeps the last of two equal keys and reports a body nested ~200 deep as
"not valid JSON"; both checks run here first, so a client learns what is actually wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

from notifier.validation import METADATA_MAX_DEPTH, TOO_DEEP

#: The body object itself is one level; its metadata field may hold the limit below it.
MAX_BODY_DEPTH = METADATA_MAX_DEPTH + 1


class RepeatedKeyError(ValueError):
    """The body names the same key twice in one object."""


_STRUCTURE = re.compile(r'[\[\]{}"]')
_STRING_STOP = re.compile(r'["\\]')


def too_deep_field(raw: str) -> str | None:
    """The top-level field whose value nests deeper than allowed ("body" if the body does).

    One pass over the text, without recursion, so no depth can exhaust the stack; it jumps
    from bracket to bracket and over strings (brackets inside them do not count).
    """
    depth = 0
    last_key = "body"
    index = 0
    while (found := _STRUCTURE.search(raw, index)) is not None:
        ch, index = found.group(), found.end()
        if ch == '"':
            start = found.start()
            while (stop := _STRING_STOP.search(raw, index)) is not None and stop.group() != '"':
                index = stop.end() + 1  # a backslash escapes the next character
            if stop is None:
                return None  # an unterminated string: the parser says what is wrong
            index = stop.end()
            if depth == 1 and _followed_by_colon(raw, index):  # a key of the body
                try:
                    last_key = str(json.loads(raw[start:index]))
                except ValueError:
                    last_key = "body"
        elif ch in "[{":
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return last_key
        else:
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
