"""Counts per key in fixed time windows, kept in the store so every gateway process sees them:
the per-sender message limit holds however many processes receive a sender's messages.

One document per key, ``{_id: key, ends_ms: t, count: c}``: the count of the window ending at
``t`` (windows are aligned to the epoch, so every process agrees where they start). Counting
is one atomic ``find_one_and_update`` with ``$inc`` in the common case (an equality on ``_id``
and ``ends_ms``, answered from the ``_id`` index by MongoDB and nx-27017 alike); the first count
of a new window resets the document with a compare-and-set on an older window, and a process
that loses that race (a duplicate key, or no match) counts into the window the winner set. A
process whose clock is behind, or that runs with a shorter window, never undoes a window that
ends later. No ``$setOnInsert``: nx-27017 drops it beside ``$inc`` (see
:class:`store.verification.WindowCounts`, the project's other window counter).

The price of fixed windows: a key may count up to twice the limit across a window boundary.
Must not know what is counted or why (senders, channels): it sees keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


@dataclass(frozen=True, slots=True)
class WindowCount:
    count: int
    """Counts of the key in its current window, this one included."""
    seconds_left: float
    """Until the window ends (and the count starts again)."""


class FixedWindowCounts:
    """Atomic counters per key that start again at every window boundary."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], collection: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.counts = db[collection]
        self.clock = clock

    async def add(self, key: str, window_seconds: float) -> WindowCount:
        """Count one for ``key`` in the present window; one round trip except at a window's first count."""
        window_ms = max(1, round(window_seconds * 1000))
        now_ms = int(self.clock() * 1000)
        ends_ms = (now_ms // window_ms + 1) * window_ms
        counted = await self.counts.find_one_and_update(
            {"_id": key, "ends_ms": ends_ms}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
        )
        if counted is None:
            try:  # a new key, or its window has ended: start it again, only from an older window
                reset = await self.counts.update_one(
                    {"_id": key, "ends_ms": {"$lt": ends_ms}}, {"$set": {"ends_ms": ends_ms, "count": 1}}, upsert=True
                )
                started = reset.matched_count > 0 or reset.upserted_id is not None
            except DuplicateKeyError:  # another process created it first
                started = False
            if started:
                return WindowCount(1, (ends_ms - now_ms) / 1000)
            # Another process started this window, or one that ends later: count into theirs.
            counted = await self.counts.find_one_and_update(
                {"_id": key}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
            )
            if counted is None:  # removed meanwhile (an operator's clean-up): this one counts alone
                return WindowCount(1, (ends_ms - now_ms) / 1000)
        return WindowCount(int(counted["count"]), max(0, int(counted["ends_ms"]) - now_ms) / 1000)

    async def current(self, key: str) -> int:
        """The key's count in its window, 0 once that has ended."""
        doc = await self.counts.find_one({"_id": key})
        if doc is None or int(doc["ends_ms"]) <= int(self.clock() * 1000):
            return 0
        return int(doc["count"])
