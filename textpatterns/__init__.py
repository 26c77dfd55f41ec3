"""Regular expressions over text from outside: customers' messages, e-mail, OCR readings, logs.

Owns: compiling such patterns so that no input can hold a process. Every call runs under a time
bound (the ``regex`` engine's timeout, which it checks while backtracking, and which releases the
GIL so a matcher in a worker thread leaves the event loop free); a caller may also set a shared
:func:`deadline` for a whole piece of work (one message's understanding). Every pattern compiled
here is registered, and ``tests/test_textpatterns.py`` runs each one against long runs of
adversarial input, so a pattern that backtracks catastrophically fails the suite, not production.

Must not know: what the patterns mean, or who calls them.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeAlias, overload

import regex

from errors import GatewayError

IGNORECASE: Final = regex.IGNORECASE
MULTILINE: Final = regex.MULTILINE
DOTALL: Final = regex.DOTALL
VERBOSE: Final = regex.VERBOSE
ASCII: Final = regex.ASCII

CALL_BUDGET_SECONDS = 0.25
"""The most one call may take. A linear pattern over the longest message (4,000 characters) takes
well under a millisecond; only a pattern that backtracks catastrophically comes near this."""

if TYPE_CHECKING:  # the regex engine's matches have re.Match's interface (it ships no types)
    Match: TypeAlias = re.Match
else:
    Match = regex.Match

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("textpatterns_deadline", default=None)


class PatternTimeout(GatewayError, TimeoutError):
    """A pattern ran out of its time bound: the input is hostile (or the pattern is broken)."""

    code = "pattern_timeout"


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every pattern call inside this block (in this thread or task) shares one time budget."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _budget() -> float:
    ends = _deadline.get()
    if ends is None:
        return CALL_BUDGET_SECONDS
    remaining = ends - time.monotonic()
    if remaining <= 0:
        raise PatternTimeout("the text took longer to read than its time budget")
    return min(CALL_BUDGET_SECONDS, remaining)


class Pattern:
    """A compiled pattern with ``re.Pattern``'s methods, each bounded in time."""

    __slots__ = ("_compiled",)

    def __init__(self, source: str, flags: int = 0) -> None:
        self._compiled = regex.compile(source, flags | regex.VERSION0)

    @property
    def pattern(self) -> str:
        return str(self._compiled.pattern)

    @property
    def flags(self) -> int:
        return int(self._compiled.flags)

    @property
    def groupindex(self) -> dict[str, int]:
        return dict(self._compiled.groupindex)

    def search(self, text: str, pos: int = 0, endpos: int | None = None) -> Match[str] | None:
        found: Match[str] | None = self._call(self._compiled.search, text, pos, endpos)
        return found

    def match(self, text: str, pos: int = 0, endpos: int | None = None) -> Match[str] | None:
        found: Match[str] | None = self._call(self._compiled.match, text, pos, endpos)
        return found

    def fullmatch(self, text: str, pos: int = 0, endpos: int | None = None) -> Match[str] | None:
        found: Match[str] | None = self._call(self._compiled.fullmatch, text, pos, endpos)
        return found

    def finditer(self, text: str, pos: int = 0, endpos: int | None = None) -> Iterator[Match[str]]:
        # The scanner checks its timeout per match; iterate eagerly so the bound covers it all.
        found: list[Match[str]] = self._call(lambda *a, **k: list(self._compiled.finditer(*a, **k)), text, pos, endpos)
        return iter(found)

    def findall(self, text: str, pos: int = 0, endpos: int | None = None) -> list[Any]:
        result: list[Any] = self._call(self._compiled.findall, text, pos, endpos)
        return result

    @overload
    def sub(self, repl: str, text: str, count: int = 0) -> str: ...
    @overload
    def sub(self, repl: Callable[[Match[str]], str], text: str, count: int = 0) -> str: ...
    def sub(self, repl: Any, text: str, count: int = 0) -> str:
        try:
            return str(self._compiled.sub(repl, text, count=count, timeout=_budget(), concurrent=True))
        except TimeoutError as exc:
            raise PatternTimeout(f"pattern {self.pattern[:60]!r} timed out") from exc

    def split(self, text: str, maxsplit: int = 0) -> list[str]:
        try:
            return list(self._compiled.split(text, maxsplit=maxsplit, timeout=_budget(), concurrent=True))
        except TimeoutError as exc:
            raise PatternTimeout(f"pattern {self.pattern[:60]!r} timed out") from exc

    def _call(self, method: Callable[..., Any], text: str, pos: int, endpos: int | None) -> Any:
        try:
            if endpos is None:
                return method(text, pos, timeout=_budget(), concurrent=True)
            return method(text, pos, endpos, timeout=_budget(), concurrent=True)
        except TimeoutError as exc:
            raise PatternTimeout(f"pattern {self.pattern[:60]!r} timed out") from exc

    def __repr__(self) -> str:
        return f"textpatterns.compile({self.pattern!r})"


REGISTRY: dict[tuple[str, int], Pattern] = {}
"""Every pattern compiled through :func:`compile`, for the adversarial test."""


def compile(source: str, flags: int = 0) -> Pattern:
    """Compile ``source`` (Python ``re`` syntax) for text from outside, and register it; the same
    source and flags give the same pattern (patterns from configuration are compiled where used)."""
    key = (source, flags)
    pattern = REGISTRY.get(key)
    if pattern is None:
        pattern = REGISTRY[key] = Pattern(source, flags)
    return pattern


def escape(text: str) -> str:
    return str(regex.escape(text))


__all__ = [
    "ASCII",
    "CALL_BUDGET_SECONDS",
    "DOTALL",
    "IGNORECASE",
    "MULTILINE",
    "REGISTRY",
    "VERBOSE",
    "Match",
    "Pattern",
    "PatternTimeout",
    "compile",
    "deadline",
    "escape",
]
