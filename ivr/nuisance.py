"""Nuisance calls: block-listed numbers and numbers that call too often are turned away.

Owns the decision only: a number (compared in the shop's national form, so ``+86 138…`` and
``138…`` are one number) on the block list, or one that has called more than ``max_calls`` times
within ``window_seconds`` (every attempt counts, rejected ones too, so a dialler that keeps trying
stays out), is refused with its reason. The window lives in this process's memory: several
gateway processes behind a balancer each count their own share.

Must not know Twilio, the call flow or the store.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from channels.base import national_phone

MAX_TRACKED_NUMBERS = 100_000
"""Bounded memory under a flood of distinct numbers: the oldest idle ones are forgotten first."""


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str | None = None
    """``blocklist`` or ``rate``."""
    recent_calls: int = 0


class NuisanceGuard:
    def __init__(
        self,
        blocklist: Iterable[str] = (),
        *,
        max_calls: int = 5,
        window_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.blocklist = frozenset(n for n in (national_phone(b) for b in blocklist) if n)
        self.max_calls = max_calls
        self.window_seconds = window_seconds
        self.clock = clock
        self._calls: dict[str, deque[float]] = {}

    def check(self, number: str) -> Verdict:
        """Record a call attempt from ``number`` and say whether to take it."""
        key = national_phone(number) or number.strip() or "anonymous"
        now = self.clock()
        times = self._calls.pop(key, deque())
        while times and now - times[0] > self.window_seconds:
            times.popleft()
        times.append(now)
        self._calls[key] = times  # re-inserted: the dict keeps numbers in order of last call
        if len(self._calls) > MAX_TRACKED_NUMBERS:
            del self._calls[next(iter(self._calls))]
        if key in self.blocklist:
            return Verdict(False, "blocklist", len(times))
        if self.max_calls > 0 and len(times) > self.max_calls:
            return Verdict(False, "rate", len(times))
        return Verdict(True, None, len(times))
