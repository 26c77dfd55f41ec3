"""Who has a conversation open in the console and who is typing in it, shared by every gateway
process through the ``console_presence`` collection (the live feed watches it). Browsers renew
their entry every few seconds; an entry not renewed within :data:`VIEWING_FOR_MS` no longer
counts, so a closed tab or a crashed process stops showing.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

VIEWING_FOR_MS = 45_000
TYPING_FOR_MS = 6_000


def _now_ms() -> int:
    return int(time.time() * 1000)


class Presence:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.entries = db["console_presence"]

    async def ensure_indexes(self) -> None:
        await self.entries.create_index("conversation_id")

    async def viewing(self, conversation_id: str, staff_id: str, name: str, *, typing: bool = False) -> None:
        key = f"{conversation_id}|{staff_id}"
        now = _now_ms()
        current = await self.entries.find_one({"_id": key}) or {}
        entry = {
            "_id": key,
            "conversation_id": conversation_id,
            "staff_id": staff_id,
            "name": name,
            "seen_ms": now,
            "typing_ms": now if typing else int(current.get("typing_ms", 0)),
        }
        # A whole document with its _id: nx-27017 drops the filter's _id from an upserted $set.
        await self.entries.replace_one({"_id": key}, entry, upsert=True)

    async def left(self, conversation_id: str, staff_id: str) -> None:
        await self.entries.delete_one({"_id": f"{conversation_id}|{staff_id}"})

    async def left_everywhere(self, staff_id: str, conversation_ids: list[str]) -> None:
        for conversation_id in conversation_ids:
            await self.left(conversation_id, staff_id)

    async def present(self, conversation_id: str) -> list[dict[str, Any]]:
        """Staff with this conversation open now: ``{staff_id, name, typing}``, by name."""
        now = _now_ms()
        out = []
        async for doc in self.entries.find({"conversation_id": conversation_id}):
            if now - int(doc.get("seen_ms", 0)) > VIEWING_FOR_MS:
                continue
            typing = now - int(doc.get("typing_ms", 0)) <= TYPING_FOR_MS
            out.append({"staff_id": doc["staff_id"], "name": doc.get("name", doc["staff_id"]), "typing": typing})
        return sorted(out, key=lambda e: e["name"])
