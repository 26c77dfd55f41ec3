"""Failed attempts to prove an order is one's own, counted in the store.

The bot asks for the phone number on an order before it shows or changes anything personal; a
wrong answer counts against the customer *and* the order, for a day, whichever flow or channel
asked — cancelling and restarting a flow, or trying from another channel, no longer resets the
count (it did: six guesses got through). The count is an atomic increment on one document per
customer and order, so parallel guesses are counted too.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

WINDOW_SECONDS = 24 * 3600


class VerificationAttempts:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], window_seconds: float = WINDOW_SECONDS) -> None:
        self.attempts = db["verification_attempts"]
        self.window_ms = int(window_seconds * 1000)

    @staticmethod
    def _key(customer_id: str, order_id: str) -> str:
        return f"{customer_id}:{order_id}"

    async def ensure_indexes(self) -> None:
        """Nothing beyond the _id index: every read and write is by customer and order."""

    async def failed(self, customer_id: str, order_id: str) -> int:
        """Count one wrong answer; returns the failures within the window, this one included."""
        now_ms = int(time.time() * 1000)
        key = self._key(customer_id, order_id)
        doc = await self.attempts.find_one({"_id": key})
        if doc is not None and now_ms - int(doc.get("since_ms", 0)) > self.window_ms:
            await self.attempts.delete_one({"_id": key, "since_ms": doc.get("since_ms")})
        updated = await self.attempts.find_one_and_update(
            {"_id": key},
            {"$inc": {"failures": 1}, "$setOnInsert": {"since_ms": now_ms}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None and "since_ms" not in updated:  # nx-27017 drops $setOnInsert beside $inc
            await self.attempts.update_one({"_id": key, "since_ms": {"$exists": False}}, {"$set": {"since_ms": now_ms}})
        return int((updated or {}).get("failures", 1))

    async def failures(self, customer_id: str, order_id: str) -> int:
        doc = await self.attempts.find_one({"_id": self._key(customer_id, order_id)})
        if doc is None or int(time.time() * 1000) - int(doc.get("since_ms", 0)) > self.window_ms:
            return 0
        return int(doc.get("failures", 0))
