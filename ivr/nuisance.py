"""Nuisance calls: block-listed numbers and numbers that call too often are turned away.

Owns the decision only: a number (compared in the shop's national form, so ``+86 138…`` and
``138…`` are one number) on the block list, or one that has called more than ``max_calls`` times
within ``window_seconds`` (every attempt counts, rejected ones too, so a dialler that keeps trying
stays out), is refused with its reason. With a :class:`CallAttempts` log (the store, through
the gateway) every gateway process counts the same attempts; without one the window lives in
this process's memory.

Must not know Twilio, the call flow or the store.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from channels.base import national_phone

MAX_TRACKED_NUMBERS = 100_000
"""Bounded memory under a flood of distinct numbers: the oldest idle ones are forgotten first."""


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str | None = None
    """``blocklist`` or ``rate``."""
    recent_calls: int = 0


class CallAttempts(Protocol):
    async def attempt(self, number_key: str, window_seconds: float) -> int:
        """Record a call attempt from the number; returns the attempts within the window, this one included."""
        ...


class NuisanceGuard:
    def __init__(
        self,
        blocklist: Iterable[str] = (),
        *,
        max_calls: int = 5,
        window_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        attempts: CallAttempts | None = None,
    ) -> None:
        self.blocklist = frozenset(n for n in (national_phone(b) for b in blocklist) if n)
        self.max_calls = max_calls
        self.window_seconds = window_seconds
        self.clock = clock
        self.attempts = attempts
        self._calls: dict[str, deque[float]] = {}

    async def verdict(self, number: str) -> Verdict:
        """Record a call attempt from ``number`` (in the shared log, if there is one) and say whether to take it."""
        if self.attempts is None:
            return self.check(number)
        key = _key(number)
        recent = await self.attempts.attempt(key, self.window_seconds)
        return self._decide(key, recent)

    def check(self, number: str) -> Verdict:
        """Record a call attempt from ``number`` in this process's window and say whether to take it."""
        key = _key(number)
        now = self.clock()
        times = self._calls.pop(key, deque())
        while times and now - times[0] > self.window_seconds:
            times.popleft()
        times.append(now)
        self._calls[key] = times  # re-inserted: the dict keeps numbers in order of last call
        if len(self._calls) > MAX_TRACKED_NUMBERS:
            del self._calls[next(iter(self._calls))]
        return self._decide(key, len(times))

    def _decide(self, key: str, recent: int) -> Verdict:
        if key in self.blocklist:
            return Verdict(False, "blocklist", recent)
        if self.max_calls > 0 and recent > self.max_calls:
            return Verdict(False, "rate", recent)
        return Verdict(True, None, recent)


def _key(number: str) -> str:
    return national_phone(number) or number.strip() or "anonymous"
