"""Counts of attempts in a time window, kept in the store so every process and channel sees them.

:class:`WindowCounts` is one atomic counter per key that starts again after its window.
:class:`VerificationAttempts` counts failed attempts to prove an order is one's own, per customer
*and* order, for a day, whichever flow or channel asked — cancelling and restarting a flow, or
trying from another channel, no longer resets the count (it did: six guesses got through).
:class:`LookupAttempts` counts order numbers a customer looked up that are not theirs, so order
numbers (a date and a counter) cannot be walked through one by one.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase


class WindowCounts:
    """Atomic counters that start again ``window_seconds`` after their first count."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], collection: str, window_seconds: float) -> None:
        self.counts = db[collection]
        self.window_ms = int(window_seconds * 1000)

    async def ensure_indexes(self) -> None:
        """Nothing beyond the _id index: every read and write is by key."""

    async def add(self, key: str) -> int:
        """Count one; returns the count within the window, this one included."""
        now_ms = int(time.time() * 1000)
        # A window that has run out starts again; of two racing resets only one matches.
        await self.counts.update_one(
            {"_id": key, "since_ms": {"$lte": now_ms - self.window_ms}}, {"$set": {"since_ms": now_ms, "count": 0}}
        )
        updated = await self.counts.find_one_and_update(
            {"_id": key}, {"$inc": {"count": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        if updated is not None and "since_ms" not in updated:  # nx-27017 drops $setOnInsert beside $inc
            await self.counts.update_one({"_id": key, "since_ms": {"$exists": False}}, {"$set": {"since_ms": now_ms}})
        return int((updated or {}).get("count", 1))

    async def current(self, key: str) -> int:
        doc = await self.counts.find_one({"_id": key})
        if doc is None or int(time.time() * 1000) - int(doc.get("since_ms", 0)) > self.window_ms:
            return 0
        return int(doc.get("count", 0))


class VerificationAttempts(WindowCounts):
    WINDOW_SECONDS = 24 * 3600

    def __init__(self, db: AsyncDatabase[dict[str, Any]], window_seconds: float = WINDOW_SECONDS) -> None:
        super().__init__(db, "verification_attempts", window_seconds)

    async def failed(self, customer_id: str, order_id: str) -> int:
        """Count one wrong answer; returns the failures within the window, this one included."""
        return await self.add(f"{customer_id}:{order_id}")

    async def failures(self, customer_id: str, order_id: str) -> int:
        return await self.current(f"{customer_id}:{order_id}")


class LookupAttempts(WindowCounts):
    WINDOW_SECONDS = 3600
    LIMIT = 10
    """Other people's (or unknown) order numbers one customer may look up in the window."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], window_seconds: float = WINDOW_SECONDS) -> None:
        super().__init__(db, "order_lookups", window_seconds)

    async def looked_up(self, customer_id: str) -> int:
        """Count one lookup of an order that is not the customer's; returns the count."""
        return await self.add(customer_id)

    async def exhausted(self, customer_id: str) -> bool:
        return await self.current(customer_id) >= self.LIMIT
