"""The media store: attachment bytes on disk by SHA-256, their metadata in the ``media`` collection.

Files live at ``<root>/<first two hex digits>/<sha256>``, so the same photo sent twice (or on two
channels) is kept once. Size and type limits are checked before anything is written; the type
is taken from the bytes' signature when it is one we know, not only from what the sender said.

An optional quota caps the bytes under the root (``MEDIA_QUOTA_BYTES``). The total is a
directory scan, cached and kept up to date by this process's writes and rescanned now and then
(other processes may write to the same root); a full disk or quota (ENOSPC, EDQUOT) while
writing is the same refusal, ``storage_full``, and leaves no temporary file behind.

Must not know which channel an attachment came from or what will read it (OCR, agents).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

import textpatterns
from store.models import Attachment, utcnow
from store.models import MediaRejected as MediaRejected  # its home before it moved to the model

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_ALLOWED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf"})

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)

_KNOWN_BY_SIGNATURE = frozenset({content_type for _, content_type in _SIGNATURES} | {"image/webp"})


def sniff_content_type(data: bytes, declared: str) -> str:
    """The type the bytes say they are. A declared type we know a signature for must match it
    (a "photo" that is not one becomes ``application/octet-stream``); others are taken as declared."""
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    declared = declared.split(";")[0].strip().lower()
    if not declared or declared in _KNOWN_BY_SIGNATURE:
        return "application/octet-stream"
    return declared


_SHA256 = textpatterns.compile(r"[0-9a-f]{64}")
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
USAGE_RESCAN_SECONDS = 60.0
"""How long the cached total under the root is trusted before it is scanned again."""


class MediaStore:
    """Content-addressed attachment storage (what channel adapters know as a ``MediaSink``)."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed_types: frozenset[str] = DEFAULT_ALLOWED_TYPES,
        quota_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.allowed_types = allowed_types
        self.quota_bytes = quota_bytes or None
        """Most bytes kept under ``root`` (None: only the disk limits it)."""
        self._metadata: AsyncCollection[dict[str, Any]] | None = None
        # Writes run in threads: the cached total is shared between them.
        self._usage_lock = threading.Lock()
        self._usage: int | None = None
        self._usage_scanned_at = 0.0

    def use_collection(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        """Where metadata goes; the gateway sets it once the store is up."""
        self._metadata = collection

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def check(self, size: int, content_type: str) -> None:
        """Raise :class:`MediaRejected` if a file of this size and type would be refused."""
        if size > self.max_bytes:
            raise MediaRejected("too_large", f"the file has {size} bytes; the limit is {self.max_bytes}")
        if content_type not in self.allowed_types:
            raise MediaRejected("type_not_allowed", f"files of type {content_type} are not accepted")

    async def save(self, data: bytes, content_type: str, filename: str | None = None) -> Attachment:
        actual_type = sniff_content_type(data, content_type)
        self.check(len(data), actual_type)
        sha256 = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, sha256, data)
        if self._metadata is not None:
            with contextlib.suppress(DuplicateKeyError):  # the same bytes were stored before
                await self._metadata.insert_one(
                    {
                        "_id": sha256,
                        "content_type": actual_type,
                        "size": len(data),
                        "filename": filename,
                        "created_at": utcnow(),
                    }
                )
        return Attachment(
            kind=_kind(actual_type),
            content_type=actual_type,
            media_id=sha256,
            filename=filename,
            size=len(data),
        )

    async def describe(self, media_id: str) -> Attachment | None:
        """The metadata of stored media, or None if there is no such file."""
        if self._metadata is None or len(media_id) != 64:
            return None
        doc = await self._metadata.find_one({"_id": media_id})
        if doc is None or not self.path_of(media_id).exists():
            return None
        content_type = str(doc["content_type"])
        return Attachment(
            kind=_kind(content_type),
            content_type=content_type,
            media_id=media_id,
            filename=doc.get("filename"),
            size=doc.get("size"),
        )

    async def get(self, media_id: str) -> bytes | None:
        """The stored bytes, or None for an unknown or malformed id (never a path outside the root)."""
        if not _SHA256.fullmatch(media_id):
            return None
        try:
            return await self.read(media_id)
        except FileNotFoundError:
            return None

    async def read(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.path_of(sha256).read_bytes)

    def used_bytes(self) -> int:
        """Bytes of the files under the root (cached; rescanned after ``USAGE_RESCAN_SECONDS``)."""
        with self._usage_lock:
            return self._current_usage()

    def _current_usage(self) -> int:
        if self._usage is None or time.monotonic() - self._usage_scanned_at > USAGE_RESCAN_SECONDS:
            self._usage = _scan(self.root)
            self._usage_scanned_at = time.monotonic()
        return self._usage

    def _reserve(self, size: int) -> None:
        """Count ``size`` bytes as used, or refuse them if they would pass the quota."""
        if self.quota_bytes is None:
            return  # no quota: nothing to count (the disk itself still refuses with ENOSPC)
        with self._usage_lock:
            used = self._current_usage()
            if used + size > self.quota_bytes:
                raise MediaRejected(
                    "storage_full", f"the media store is full ({used} of {self.quota_bytes} bytes used)"
                )
            self._usage = used + size

    def _release(self, size: int) -> None:
        if self.quota_bytes is None:
            return
        with self._usage_lock:
            if self._usage is not None:
                self._usage = max(self._usage - size, 0)

    def _write(self, sha256: str, data: bytes) -> None:
        path = self.path_of(sha256)
        if path.exists():
            return
        self._reserve(len(data))
        temp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target and rename, so a reader never sees half a file.
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temp, path)
        except BaseException as exc:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
            self._release(len(data))
            if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
                log.error("media store %s is full: %s", self.root, exc)
                raise MediaRejected("storage_full", f"the media store has no room left: {exc.strerror}") from exc
            raise
        log.debug("stored media %s (%d bytes)", sha256, len(data))


def _scan(root: Path) -> int:
    """Bytes of the stored files under ``root`` (temporary files of writes under way left out)."""
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.startswith(".incoming-"):
                with contextlib.suppress(FileNotFoundError):  # removed while we looked
                    total += os.stat(os.path.join(directory, name)).st_size
    return total


def _kind(content_type: str) -> str:
    return content_type.split("/")[0] if content_type.startswith(("image/", "audio/", "video/")) else "document"
