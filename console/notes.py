"""Agents' internal notes on a conversation: seen by staff only, never sent to the customer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

MAX_NOTE_CHARS = 4000


class Note(BaseModel):
    id: str
    conversation_id: str
    customer_id: str
    author: str
    author_name: str
    text: str = Field(max_length=MAX_NOTE_CHARS)
    created_at: datetime


class InternalNotes:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.notes = db["conversation_notes"]

    async def ensure_indexes(self) -> None:
        await self.notes.create_index("conversation_id")  # nx-27017 cannot put _id in a compound index

    async def add(self, conversation_id: str, customer_id: str, author: str, author_name: str, text: str) -> Note:
        note = Note(
            id=str(ObjectId()),
            conversation_id=conversation_id,
            customer_id=customer_id,
            author=author,
            author_name=author_name,
            text=text.strip()[:MAX_NOTE_CHARS],
            created_at=datetime.now(UTC),
        )
        doc = note.model_dump()
        doc["_id"] = doc.pop("id")
        await self.notes.insert_one(doc)
        return note

    async def for_conversations(self, conversation_ids: list[str], limit: int = 500) -> list[Note]:
        cursor = self.notes.find({"conversation_id": {"$in": conversation_ids}}).sort("_id", ASCENDING).limit(limit)
        return [
            Note.model_validate({"id": d["_id"], **{k: v for k, v in d.items() if k != "_id"}}) async for d in cursor
        ]
