"""Senders bound to a session, for channels whose clients name themselves (the REST webhook).

Knowing someone's sender id must not be enough to write as them, read their replies, or replay
their message ids. The first message of a sender binds it (``sender_sessions``, one document per
channel and sender); every later message must carry the session token, an HMAC of the channel and
sender under the installation's secret, so checking a token costs no store round trip. A retry of
the binding message itself (same channel message id, the client never saw the answer) may bind
again and is given the same token.

The installation's secret is ``configured`` (the same in every gateway process), or generated
once and kept in the store, where every process reads the same one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from store.models import utcnow

SECRETS = "installation_secrets"
SESSIONS = "sender_sessions"


async def installation_secret(db: AsyncDatabase[dict[str, Any]], name: str) -> str:
    """A random secret made once per installation and shared by every process through the store."""
    secrets_collection = db[SECRETS]
    found = await secrets_collection.find_one({"_id": name})
    if found is None:
        with contextlib.suppress(DuplicateKeyError):  # another process made it first: use theirs
            await secrets_collection.insert_one({"_id": name, "value": secrets.token_hex(32), "created_at": utcnow()})
        found = await secrets_collection.find_one({"_id": name})
        assert found is not None
    return str(found["value"])


class SenderSessions:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], secret: str) -> None:
        self.sessions = db[SESSIONS]
        self._key = hashlib.sha256(f"sender-sessions\n{secret}".encode()).digest()

    @classmethod
    async def open(cls, db: AsyncDatabase[dict[str, Any]], configured_secret: str | None = None) -> SenderSessions:
        return cls(db, configured_secret or await installation_secret(db, "sender_sessions"))

    def token_for(self, channel: str, sender: str) -> str:
        digest = hmac.new(self._key, f"{channel}\n{sender}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, channel: str, sender: str, token: str) -> bool:
        return hmac.compare_digest(self.token_for(channel, sender).encode(), token.encode())

    async def claim(self, channel: str, sender: str, channel_message_id: str) -> bool:
        """Bind an unbound sender with its first message; True also for a retry of that message.
        False: the sender is someone's already, and this request did not prove it is theirs."""
        key = f"{channel}:{sender}"
        try:
            await self.sessions.insert_one({"_id": key, "first_message": channel_message_id, "created_at": utcnow()})
            return True
        except DuplicateKeyError:
            bound = await self.sessions.find_one({"_id": key})
            return bound is not None and bound.get("first_message") == channel_message_id
