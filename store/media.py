"""The media store: bytes of uploaded files and channel attachments, in GridFS, keyed by sha256.

An :class:`~store.models.Attachment`'s ``media_id`` is the sha256 of its bytes, so the same photo
sent twice is stored once and a reference can be checked against its content. GridFS works on
real MongoDB (replica sets, sharding) and on the embedded nx-27017 server alike.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

log = logging.getLogger(__name__)

MEDIA_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class StoredMedia:
    media_id: str
    size: int
    content_type: str | None
    filename: str | None


class MediaStore:
    """Stores and returns file bytes by content hash (bucket ``media``)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], bucket: str = "media") -> None:
        self.bucket = AsyncGridFSBucket(db, bucket_name=bucket)
        self.files = db[f"{bucket}.files"]

    async def put(self, data: bytes, *, content_type: str | None = None, filename: str | None = None) -> StoredMedia:
        """Store ``data`` unless the same bytes are stored already; returns its media id."""
        media_id = hashlib.sha256(data).hexdigest()
        if await self.files.find_one({"_id": media_id}, {"_id": 1}) is None:
            metadata = {"content_type": content_type, "sha256": media_id}
            try:
                await self.bucket.upload_from_stream_with_id(media_id, filename or media_id, data, metadata=metadata)
            except (FileExists, DuplicateKeyError):
                log.debug("media %s stored concurrently", media_id)  # same bytes: nothing lost
        return StoredMedia(media_id, len(data), content_type, filename)

    async def get(self, media_id: str) -> bytes | None:
        if not MEDIA_ID.match(media_id):
            return None
        try:
            stream = await self.bucket.open_download_stream(media_id)
        except NoFile:
            return None
        data: bytes = await stream.read()
        return data

    async def describe(self, media_id: str) -> StoredMedia | None:
        if not MEDIA_ID.match(media_id):
            return None
        doc = await self.files.find_one({"_id": media_id})
        if doc is None:
            return None
        metadata = doc.get("metadata") or {}
        return StoredMedia(media_id, int(doc.get("length", 0)), metadata.get("content_type"), doc.get("filename"))
