"""Staff passwords as slow hashes (Argon2id, argon2-cffi's defaults: 3 passes over 64 MiB).

Hashing runs in a worker thread so a sign-in never stalls the event loop. Only the hash is kept;
an unknown account is checked against a dummy hash so both answers take as long.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from errors import UserError

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


class WeakPassword(UserError):
    """The password is refused; the message says why."""

    code = "weak_password"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="password")


def check_strength(password: str, *, staff_id: str = "") -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(f"a password needs {MIN_LENGTH}–{MAX_LENGTH} characters")
    if staff_id and staff_id.lower() in password.lower():
        raise WeakPassword("a password must not contain the account name")
    if len(set(password)) < 5:
        raise WeakPassword("a password needs at least 5 different characters")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Whether the password matches, and a fresh hash when the stored one uses old parameters."""

    def verify() -> tuple[bool, str | None]:
        target = stored_hash or _DUMMY_HASH
        try:
            _hasher.verify(target, password[:MAX_LENGTH])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if stored_hash is None:
            return False, None
        return True, _hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None

    return await asyncio.to_thread(verify)
