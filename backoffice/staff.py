"""Staff accounts: who works the tickets, in which roles and skill groups, how many tickets they
can hold at once, whether they are online, and the API tokens they sign in with.

Tokens are random and stored only as sha256 hashes; a token is shown once, when issued.
Console passwords are stored only as Argon2id hashes (``backoffice.passwords``); browser
sessions are the console's concern and build on these accounts.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.passwords import check_strength, hash_password, verify_password
from backoffice.permissions import Actor, Role
from errors import Conflict
from store.mongo import array_indexes_work

DEFAULT_CAPACITY = 10
STAFF_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffExists(Conflict):
    """A staff member with this id exists already."""

    code = "exists"


class StaffMember(BaseModel):
    id: str = Field(pattern=STAFF_ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1)
    skill_groups: list[str] = Field(default_factory=list)
    capacity: int = Field(DEFAULT_CAPACITY, ge=0, le=500, description="open tickets held at once")
    online: bool = False
    disabled: bool = False
    language: str = "zh"
    created_at: datetime
    last_assigned_ms: int = 0
    has_password: bool = False

    def actor(self) -> Actor:
        return Actor(self.id, frozenset(self.roles), frozenset(self.skill_groups))


class StaffDirectory:
    """Staff accounts in the ``staff`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.staff = db["staff"]

    async def ensure_indexes(self, *, array_indexes: bool | None = None) -> None:
        """``array_indexes``: whether the server can index array fields (asked when not given)."""
        if array_indexes is None:
            array_indexes = await array_indexes_work(self.db)
        if array_indexes:
            await self.staff.create_index([("token_hashes", ASCENDING)])
            await self.staff.create_index([("skill_groups", ASCENDING)])

    async def create(
        self,
        staff_id: str,
        *,
        name: str,
        roles: list[Role],
        skill_groups: list[str] | None = None,
        capacity: int = DEFAULT_CAPACITY,
        online: bool = False,
        language: str = "zh",
    ) -> tuple[StaffMember, str]:
        """A new account and its first API token (shown only now)."""
        member = StaffMember(
            id=staff_id,
            name=name,
            roles=roles,
            skill_groups=sorted(set(skill_groups or [])),
            capacity=capacity,
            online=online,
            language=language,
            created_at=_now(),
        )
        token = new_token()
        doc = member.model_dump(mode="json")
        doc["_id"] = doc.pop("id")
        doc["token_hashes"] = [token_hash(token)]
        doc["token_expiry"] = {token_hash(token): _expiry_ms()}
        try:
            await self.staff.insert_one(doc)
        except DuplicateKeyError:
            raise StaffExists(f"staff member {staff_id!r} exists already") from None
        return member, token

    async def ensure(self, staff_id: str, token: str, **fields: Any) -> StaffMember:
        """An account that signs in with this token, created if missing (bootstrap and demo staff)."""
        existing = await self.get(staff_id)
        if existing is None:
            try:
                existing, _ = await self.create(staff_id, **fields)
            except StaffExists:
                existing = await self.get(staff_id)
                assert existing is not None
        digest = token_hash(token)
        doc = await self.staff.find_one({"_id": staff_id})
        assert doc is not None
        await self.staff.update_one(
            {"_id": staff_id},
            {"$set": {"token_hashes": list(dict.fromkeys([*doc.get("token_hashes", []), digest])),
                      f"token_expiry.{digest}": _expiry_ms()}},
        )  # fmt: skip
        return existing

    async def issue_token(self, staff_id: str) -> str:
        doc = await self.staff.find_one({"_id": staff_id})
        if doc is None:
            raise KeyError(staff_id)
        token = new_token()
        digest = token_hash(token)
        await self.staff.update_one(
            {"_id": staff_id},
            {"$set": {"token_hashes": [*doc.get("token_hashes", []), digest], f"token_expiry.{digest}": _expiry_ms()}},
        )
        return token

    async def revoke_tokens(self, staff_id: str) -> int:
        """Every API token of the account stops working; returns how many there were."""
        doc = await self.staff.find_one({"_id": staff_id})
        if doc is None:
            raise KeyError(staff_id)
        await self.staff.update_one({"_id": staff_id}, {"$set": {"token_hashes": [], "token_expiry": {}}})
        return len(doc.get("token_hashes", []))

    async def set_password(self, staff_id: str, password: str) -> None:
        """Replace the account's console password (refused with ``WeakPassword`` if weak). Changing
        a password (not setting the first) also ends the account's API tokens: whoever had the
        old password may have made one."""
        check_strength(password, staff_id=staff_id)
        digest = await hash_password(password)
        doc = await self.staff.find_one({"_id": staff_id})
        if doc is None:
            raise KeyError(staff_id)
        changes: dict[str, Any] = {"password_hash": digest, "has_password": True}
        if doc.get("password_hash"):
            changes.update(token_hashes=[], token_expiry={})
        await self.staff.update_one({"_id": staff_id}, {"$set": changes})

    async def check_password(self, staff_id: str, password: str) -> StaffMember | None:
        """The account if the password is right and the account enabled; None otherwise."""
        doc = await self.staff.find_one({"_id": staff_id}) if staff_id else None
        ok, fresh_hash = await verify_password(doc.get("password_hash") if doc else None, password)
        if not ok or doc is None or doc.get("disabled"):
            return None
        if fresh_hash is not None:
            await self.staff.update_one({"_id": staff_id}, {"$set": {"password_hash": fresh_hash}})
        return _member(doc)

    async def authenticate(self, token: str) -> StaffMember | None:
        if not token:
            return None
        digest = token_hash(token)
        doc = await self.staff.find_one({"token_hashes": digest})
        if doc is None or doc.get("disabled"):
            return None
        expires = (doc.get("token_expiry") or {}).get(digest)
        if expires is None:  # a token from before tokens expired: it now has the usual lifetime
            await self.staff.update_one({"_id": doc["_id"]}, {"$set": {f"token_expiry.{digest}": _expiry_ms()}})
        elif int(expires) < _now_ms():
            return None
        return _member(doc)

    async def get(self, staff_id: str) -> StaffMember | None:
        doc = await self.staff.find_one({"_id": staff_id})
        return _member(doc) if doc else None

    async def all(self) -> list[StaffMember]:
        return [_member(d) async for d in self.staff.find({}).sort("_id", ASCENDING)]

    async def update(self, staff_id: str, **changes: Any) -> StaffMember:
        """Change roles, skills, capacity, name, online or disabled (validated as a whole)."""
        current = await self.get(staff_id)
        if current is None:
            raise KeyError(staff_id)
        if "skill_groups" in changes:
            changes["skill_groups"] = sorted(set(changes["skill_groups"]))
        updated = StaffMember.model_validate({**current.model_dump(), **changes})
        doc = updated.model_dump(mode="json")
        doc.pop("id")
        await self.staff.update_one({"_id": staff_id}, {"$set": {k: doc[k] for k in changes}})
        return updated

    async def candidates(self, queue: str) -> list[StaffMember]:
        """Online reviewers with the queue's skill, able to take tickets."""
        cursor = self.staff.find({"skill_groups": queue, "online": True})
        found = [_member(d) async for d in cursor]
        return [m for m in found if not m.disabled and Role.REVIEWER in m.roles and m.capacity > 0]

    async def note_assigned(self, staff_id: str, at_ms: int) -> None:
        await self.staff.update_one({"_id": staff_id}, {"$set": {"last_assigned_ms": at_ms}})

    async def with_role(self, role: Role) -> list[StaffMember]:
        return [m for m in await self.all() if role in m.roles and not m.disabled]


TOKEN_LIFETIME = timedelta(days=90)
"""An API token works this long after it is issued; then a new one is issued (or the account signs in)."""


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _expiry_ms() -> int:
    return _now_ms() + int(TOKEN_LIFETIME.total_seconds() * 1000)


def new_token() -> str:
    return "bo_" + secrets.token_urlsafe(32)


def _member(doc: dict[str, Any]) -> StaffMember:
    data = {k: v for k, v in doc.items() if k not in ("_id", "token_hashes", "password_hash")}
    return StaffMember.model_validate({"id": doc["_id"], **data})
