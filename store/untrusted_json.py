"""Reading JSON that came from outside: one parser for every webhook, API body and websocket frame.

``json.loads`` alone accepts ``NaN`` and ``Infinity`` (not JSON, and they break comparisons and
the store), integers with thousands of digits (slow to convert, refused by Python past 4,300
digits with a ``ValueError`` nobody expected) and nesting deep enough to exhaust the stack
(``RecursionError``). Here each is a :class:`UntrustedJson` error with a code, which routes turn
into a 400 naming the problem.
"""

from __future__ import annotations

import json
from typing import Any

from errors import UserError

MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 40


class UntrustedJson(UserError):
    """A body or frame that is not JSON we take: ``code`` says why (``invalid_json``,
    ``invalid_encoding``, ``too_deep``)."""

    code = "invalid_json"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


def _no_constant(name: str) -> Any:
    raise UntrustedJson("invalid_json", f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise UntrustedJson("invalid_json", f"a {len(text)}-digit integer is not a number we take")
    return int(text)


def _depth(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def loads(raw: bytes | str) -> Any:
    """The JSON document, or :class:`UntrustedJson` (``invalid_encoding``, ``invalid_json``, ``too_deep``)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UntrustedJson("invalid_encoding", "the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise UntrustedJson("invalid_json", f"the body is not JSON: {exc.msg}") from None
    except RecursionError:
        raise UntrustedJson("too_deep", f"the body nests deeper than {MAX_DEPTH} levels") from None
    if not _depth(value, MAX_DEPTH):
        raise UntrustedJson("too_deep", f"the body nests deeper than {MAX_DEPTH} levels")
    return value
