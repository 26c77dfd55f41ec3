"""The callback inbox (``downstream_events``): every callback a downstream system sends is stored
here before it is acknowledged, once.

The document's ``_id`` is the event's id (system and the provider's idempotency key), so a
repeated delivery finds the stored one (:meth:`CallbackInbox.accept` says ``duplicate``) and
changes nothing. An event is ``pending`` until its effects are done, then ``done`` (or
``failed`` with the reason, after :data:`MAX_ATTEMPTS`). Whoever applies it first claims it
(:meth:`CallbackInbox.claim`, a compare-and-set), so the callback's own request and a sweep never
apply one event at the same time; a process that dies holding a claim leaves the event to the
sweep once the claim is :data:`CLAIM_SECONDS` old. Times are epoch milliseconds (nx-27017 turns ``$set``
datetimes into strings).
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from downstream.events import DownstreamEvent

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 60
RAW_KEPT = 64 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


class CallbackInbox:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.events = db["downstream_events"]

    async def ensure_indexes(self) -> None:
        await self.events.create_index([("status", ASCENDING), ("occurred_ms", ASCENDING)])
        await self.events.create_index("request_id")
        await self.events.create_index("status")  # the pending sweep; nx-27017 uses single-field indexes only

    async def accept(self, event: DownstreamEvent, raw: bytes, signed_at: int) -> tuple[dict[str, Any], bool]:
        """Store the event; ``(stored document, duplicate)``."""
        doc: dict[str, Any] = {
            "_id": event.id,
            "system": event.system.value,
            "kind": event.kind.value,
            "event": event.model_dump(mode="json"),
            "request_id": event.request_id,
            "raw": raw[:RAW_KEPT].decode("utf-8", "replace"),
            "signed_at": signed_at,
            "occurred_ms": int(event.occurred_at.timestamp() * 1000),
            "received_ms": now_ms(),
            "status": "pending",
            "attempts": 0,
            "claimed_ms": 0,
        }
        try:
            await self.events.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.events.find_one({"_id": event.id})
            if existing is None:
                raise
            return existing, True
        return doc, False

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return await self.events.find_one({"_id": event_id})

    async def claim(self, event_id: str) -> bool:
        """Take the event to apply it: True for the one caller that got it (pending, and not
        claimed by another within :data:`CLAIM_SECONDS`)."""
        doc = await self.events.find_one({"_id": event_id}, {"status": 1, "claimed_ms": 1})
        if doc is None or doc.get("status") != "pending":
            return False
        claimed = int(doc.get("claimed_ms") or 0)
        now = now_ms()
        if claimed and now - claimed < CLAIM_SECONDS * 1000:
            return False
        result = await self.events.update_one(
            {"_id": event_id, "status": "pending", "claimed_ms": claimed}, {"$set": {"claimed_ms": now}}
        )
        return result.modified_count == 1

    async def pending(self, limit: int = 200) -> list[DownstreamEvent]:
        """Events still to apply, oldest at the source first."""
        cursor = self.events.find({"status": "pending"}).sort("occurred_ms", ASCENDING).limit(limit)
        return [DownstreamEvent.model_validate(d["event"]) async for d in cursor]

    async def done(self, event_id: str, note: str) -> None:
        await self.events.update_one(
            {"_id": event_id}, {"$set": {"status": "done", "note": note[:500], "processed_ms": now_ms()}}
        )

    async def failed_attempt(self, event_id: str, error: str) -> None:
        doc = await self.events.find_one({"_id": event_id}, {"attempts": 1})
        attempts = int((doc or {}).get("attempts", 0)) + 1
        changes: dict[str, Any] = {"attempts": attempts, "note": error[:500], "claimed_ms": 0}
        if attempts >= MAX_ATTEMPTS:
            changes["status"] = "failed"
        await self.events.update_one({"_id": event_id}, {"$set": changes})

    async def count(self, **query: Any) -> int:
        return await self.events.count_documents(query)
