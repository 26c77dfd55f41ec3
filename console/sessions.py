"""Browser sessions for signed-in staff, and the throttle that slows password guessing.

A session id is 32 random bytes sent only in a cookie and stored only as its sha256 hash, so a
copy of the database does not sign anyone in. Each session carries its own CSRF token, which
the page sends back in a header or form field on every state-changing request. Sessions end
after :data:`IDLE_TIMEOUT` without use, :data:`ABSOLUTE_TIMEOUT` after sign-in, or at sign-out.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

IDLE_TIMEOUT = timedelta(hours=8)
ABSOLUTE_TIMEOUT = timedelta(hours=24)
TOUCH_EVERY_MS = 60_000
"""Last use is written at most once a minute per session, not on every request."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    staff_id: str
    csrf_token: str
    created_ms: int
    seen_ms: int
    session_hash: str

    def expired(self, now_ms: int) -> bool:
        return (
            now_ms - self.seen_ms > IDLE_TIMEOUT.total_seconds() * 1000
            or now_ms - self.created_ms > ABSOLUTE_TIMEOUT.total_seconds() * 1000
        )


class SessionStore:
    """Sessions in the ``console_sessions`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.sessions = db["console_sessions"]

    async def ensure_indexes(self) -> None:
        await self.sessions.create_index("staff_id")

    async def open(self, staff_id: str, *, ip: str = "", user_agent: str = "") -> tuple[str, ConsoleSession]:
        """A new session; returns the raw id for the cookie (shown only now) and the session."""
        raw = secrets.token_urlsafe(32)
        now = _now_ms()
        session = ConsoleSession(staff_id, secrets.token_urlsafe(32), now, now, _digest(raw))
        await self.sessions.insert_one(
            {
                "_id": session.session_hash,
                "staff_id": staff_id,
                "csrf_token": session.csrf_token,
                "created_ms": now,
                "seen_ms": now,
                "ip": ip[:64],
                "user_agent": user_agent[:200],
            }
        )
        return raw, session

    async def find(self, raw: str) -> ConsoleSession | None:
        """The live session for this cookie value; an expired one is removed."""
        if not raw or len(raw) > 100:
            return None
        doc = await self.sessions.find_one({"_id": _digest(raw)})
        if doc is None:
            return None
        session = ConsoleSession(
            doc["staff_id"], doc["csrf_token"], int(doc["created_ms"]), int(doc["seen_ms"]), doc["_id"]
        )
        now = _now_ms()
        if session.expired(now):
            await self.sessions.delete_one({"_id": session.session_hash})
            return None
        if now - session.seen_ms > TOUCH_EVERY_MS:
            await self.sessions.update_one({"_id": session.session_hash}, {"$set": {"seen_ms": now}})
        return session

    async def close(self, raw: str) -> None:
        await self.sessions.delete_one({"_id": _digest(raw)})

    async def close_all(self, staff_id: str, *, keep: str | None = None) -> int:
        """Sign a staff member out everywhere (password changed, account disabled); ``keep``: the
        hash of a session to leave open (the one that changed its own password)."""
        query: dict[str, Any] = {"staff_id": staff_id}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        result = await self.sessions.delete_many(query)
        return result.deleted_count


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    limit: int
    window_ms: int


class SignInThrottle:
    """Sign-in attempts per account and per client address; past the limit, sign-in is refused
    for the rest of the window, right password or not.

    An attempt is counted *before* its password is checked, with one atomic increment per key, so
    forty parallel guesses are forty attempts (they were all checked against a count of zero). A
    right password takes its attempt back, so an office signing in from one address is not locked.
    """

    PER_ACCOUNT = ThrottleRule(5, 15 * 60_000)
    PER_ADDRESS = ThrottleRule(20, 15 * 60_000)

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.failures = db["console_sign_in_failures"]

    def _keys(self, staff_id: str, ip: str) -> list[tuple[str, ThrottleRule]]:
        return [(f"staff:{staff_id[:64]}", self.PER_ACCOUNT), (f"ip:{ip[:64]}", self.PER_ADDRESS)]

    async def attempt(self, staff_id: str, ip: str) -> int:
        """Count one attempt; seconds to wait when it is over a limit (the password must then not
        be checked), 0 when it may go ahead."""
        now = _now_ms()
        wait = 0
        for key, rule in self._keys(staff_id, ip):
            # A window that has run out starts again; only one of two racing resets matches.
            await self.failures.update_one(
                {"_id": key, "window_start_ms": {"$lte": now - rule.window_ms}},
                {"$set": {"window_start_ms": now, "count": 0}},
            )
            doc = await self.failures.find_one_and_update(
                {"_id": key}, {"$inc": {"count": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
            assert doc is not None
            if "window_start_ms" not in doc:
                await self.failures.update_one(
                    {"_id": key, "window_start_ms": {"$exists": False}}, {"$set": {"window_start_ms": now}}
                )
            start = int(doc.get("window_start_ms", now))
            if int(doc["count"]) > rule.limit:
                wait = max(wait, (start + rule.window_ms - now) // 1000 + 1)
        return wait

    async def succeeded(self, staff_id: str, ip: str) -> None:
        """The right password: the account's count starts again, the address gets its attempt back."""
        await self.failures.delete_one({"_id": f"staff:{staff_id[:64]}"})
        await self.failures.update_one({"_id": f"ip:{ip[:64]}", "count": {"$gt": 0}}, {"$inc": {"count": -1}})
