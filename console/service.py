"""The console's state, composed once per gateway process over the store's database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from console.canned import CannedReplies
from console.live import LiveFeed
from console.notes import InternalNotes
from console.presence import Presence
from console.sessions import SessionStore, SignInThrottle


class Console:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, canned_replies_path: Path | None = None) -> None:
        self.sessions = SessionStore(db)
        self.throttle = SignInThrottle(db)
        self.presence = Presence(db)
        self.notes = InternalNotes(db)
        self.canned = CannedReplies.load(canned_replies_path)
        self.live = LiveFeed(db)

    async def ensure_indexes(self) -> None:
        await self.sessions.ensure_indexes()
        await self.presence.ensure_indexes()
        await self.notes.ensure_indexes()
