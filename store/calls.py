"""The phone line's records that outlive one process: each call's state between its webhooks and
streams (``voice_calls``, which a load balancer may send to different gateway processes), and the
call attempts per number that the nuisance guard counts (``voice_call_attempts``).

Stores what it is given: what a call record holds is the phone line's business (``ivr/``).
"""

from __future__ import annotations

import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

KEEP_CALLS_MS = 24 * 3600 * 1000
"""Call records older than this are cleared away."""
SWEEP_EVERY = 50
"""A call saves a dozen times: clearing on every 50th save is about once per few calls."""


class CallRecords:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.calls = db["voice_calls"]
        self.attempts = db["voice_call_attempts"]
        self._indexed = False
        self._saves = 0

    async def _indexes(self) -> None:
        if not self._indexed:
            await self.calls.create_index("saved_ms")
            await self.attempts.create_index([("number", 1), ("at_ms", 1)])
            self._indexed = True

    async def save_call(self, sid: str, record: dict[str, Any]) -> None:
        """A call's state (a whole-document replace: nx-27017 drops an upsert's filter ``_id`` from
        ``$set``). Now and then, calls older than a day are cleared away."""
        await self._indexes()
        now_ms = int(time.time() * 1000)
        await self.calls.replace_one({"_id": sid}, {"_id": sid, **record, "saved_ms": now_ms}, upsert=True)
        self._saves += 1
        if self._saves % SWEEP_EVERY == 1:
            await self.calls.delete_many({"saved_ms": {"$lt": now_ms - KEEP_CALLS_MS}})

    async def load_call(self, sid: str) -> dict[str, Any] | None:
        return await self.calls.find_one({"_id": sid[:64]})

    async def attempt(self, number_key: str, window_seconds: float) -> int:
        """Record a call attempt; the attempts from the number within the window."""
        await self._indexes()
        now_ms = int(time.time() * 1000)
        since_ms = now_ms - int(window_seconds * 1000)
        await self.attempts.insert_one({"number": number_key, "at_ms": now_ms})
        await self.attempts.delete_many({"number": number_key, "at_ms": {"$lt": since_ms}})
        return await self.attempts.count_documents({"number": number_key, "at_ms": {"$gte": since_ms}})
