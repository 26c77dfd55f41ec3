"""Persistence of OCR results (collection ``ocr_results``) with their corrections history.

Works on real MongoDB and on the embedded nx-27017 server: timestamps are ISO strings,
documents are created by plain inserts, and a correction is applied with an optimistic
revision check (``rev``) instead of ``$push`` (nx-27017 stores a pushed document as a string),
so two reviewers correcting at once cannot lose each other's change.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from errors import Conflict
from media_ocr.model import OcrResult
from store.mongo import new_id


class ConcurrentChange(Conflict, RuntimeError):
    """Someone else changed the result between reading and writing it."""

    code = "conflict"


class OcrResultStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.results = db["ocr_results"]

    async def ensure_indexes(self) -> None:
        await self.results.create_index("media_id")
        await self.results.create_index([("needs_review", ASCENDING), ("created_at", ASCENDING)])
        await self.results.create_index([("source.channel", ASCENDING), ("source.message_id", ASCENDING)])
        await self.results.create_index("source.conversation_id")

    async def ids_for_conversation(self, conversation_id: str) -> list[str]:
        """Results of photos sent in a conversation (the backoffice links them to its tickets)."""
        cursor = self.results.find({"source.conversation_id": conversation_id}, {"_id": 1}).sort("_id", ASCENDING)
        return [str(doc["_id"]) async for doc in cursor]

    async def for_media(self, media_ids: list[str]) -> dict[str, OcrResult]:
        """The latest result read from each of these photos (the console shows them side by side)."""
        found: dict[str, OcrResult] = {}
        cursor = self.results.find({"media_id": {"$in": media_ids[:200]}}).sort("_id", ASCENDING)
        async for doc in cursor:
            doc.pop("rev", None)
            doc["id"] = doc.pop("_id")
            result = OcrResult.model_validate(doc)
            if result.media_id:
                found[result.media_id] = result
        return found

    async def insert(self, result: OcrResult) -> OcrResult:
        stored = result.model_copy(update={"id": new_id()})
        doc = stored.model_dump(mode="json", exclude={"id"})
        await self.results.insert_one({"_id": stored.id, "rev": 0, **doc})
        return stored

    async def get(self, result_id: str) -> OcrResult | None:
        found = await self._get(result_id)
        return found[0] if found else None

    async def _get(self, result_id: str) -> tuple[OcrResult, int] | None:
        doc = await self.results.find_one({"_id": result_id})
        if doc is None:
            return None
        revision = int(doc.pop("rev", 0))
        doc["id"] = doc.pop("_id")
        return OcrResult.model_validate(doc), revision

    async def get_with_revision(self, result_id: str) -> tuple[OcrResult, int] | None:
        return await self._get(result_id)

    async def replace_if_unchanged(self, result: OcrResult, revision: int) -> None:
        """Write ``result`` back unless another writer got there first (then raise)."""
        if result.id is None:
            raise ValueError("result has no id")
        changes = result.model_dump(mode="json", exclude={"id", "created_at"})
        outcome = await self.results.update_one(
            {"_id": result.id, "rev": revision}, {"$set": {**changes, "rev": revision + 1}}
        )
        if outcome.matched_count != 1:
            raise ConcurrentChange(f"OCR result {result.id} changed meanwhile; reload and retry")

    async def waiting_for_review(self, limit: int = 50) -> list[OcrResult]:
        """Results a person must look at, newest first (the console's review queue)."""
        cursor = self.results.find({"needs_review": True}).sort("_id", DESCENDING).limit(limit)
        found = []
        async for doc in cursor:
            doc.pop("rev", None)
            doc["id"] = doc.pop("_id")
            found.append(OcrResult.model_validate(doc))
        return found
