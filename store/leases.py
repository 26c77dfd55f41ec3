"""Leases in the store: who may do a job that only one gateway process at a time may do.

Several gateway processes share one store. A lease names a job (``outbox:telegram``,
``receive:telegram``) and has one holder until it is released or its time runs out, so a
process that dies holding one blocks the job only until the lease expires. Times are epoch
milliseconds (integers): nx-27017 turns datetimes written with ``$set`` into strings.

A lease is taken by inserting its document (the unique ``_id`` makes one insert win) or by
taking over an expired one with a conditional update; both are single-document atomic
operations on MongoDB and nx-27017 alike. Must not know what the jobs are. A conversation's turn
lease follows the same rules on the conversation's own document (its taking is the turn's read
of it: ``ConversationStore.take_turn_lease``), waited for and renewed by :func:`wait_for` and
:class:`Renewal` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def _now_ms() -> int:
    return int(time.time() * 1000)


def process_identity() -> str:
    """This process among all gateway processes: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseUnavailable(Unavailable, TimeoutError):
    """Another process held the lease for longer than the caller would wait."""

    code = "lease_unavailable"


class Leases:
    """The ``leases`` collection: ``{_id: job, owner, until_ms}``."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        owner: str | None = None,
        *,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.collection = db["leases"]
        self.owner = owner or process_identity()
        self.clock_ms = clock_ms

    async def try_acquire(self, job: str, ttl: float) -> bool:
        """Take (or renew) the lease for ``ttl`` seconds if nobody else holds a live one."""
        now = self.clock_ms()
        until = now + int(ttl * 1000)
        try:
            await self.collection.insert_one({"_id": job, "owner": self.owner, "until_ms": until})
            return True
        except DuplicateKeyError:
            pass
        # Read, then compare-and-set on what was read: equality filters only (nx-27017 scans
        # for an $or, and once matched a document against a null inside one).
        current = await self.collection.find_one({"_id": job})
        if current is None:
            return False  # released in between: the next try inserts it
        holder, held_until = current.get("owner"), int(current.get("until_ms", 0))
        if holder != self.owner and held_until >= now:
            return False
        result = await self.collection.update_one(
            {"_id": job, "owner": holder, "until_ms": current.get("until_ms")},
            {"$set": {"owner": self.owner, "until_ms": until}},
        )
        if result.matched_count == 1 and holder != self.owner:
            log.info("lease %s taken over from %s (expired)", job, holder)
        return result.matched_count == 1

    async def release(self, job: str) -> None:
        await self.collection.delete_one({"_id": job, "owner": self.owner})

    async def holder(self, job: str) -> str | None:
        """Who holds a live lease on the job (None if nobody)."""
        doc = await self.collection.find_one({"_id": job})
        if doc is None or int(doc.get("until_ms", 0)) < self.clock_ms():
            return None
        return str(doc.get("owner"))

    @contextlib.asynccontextmanager
    async def hold(self, job: str, ttl: float = 10.0, *, wait: float = 60.0, poll: float = 0.01) -> AsyncIterator[None]:
        """Wait (polling, up to ``wait`` seconds) for the lease, keep renewing it while the block
        runs, release it after. Raises :class:`LeaseUnavailable` if it could not be had in time."""

        async def take() -> bool | None:
            return await self.try_acquire(job, ttl) or None

        await wait_for(job, take, wait=wait, poll=poll)
        renewal = Renewal(job, lambda: self.try_acquire(job, ttl), ttl)
        try:
            yield
        finally:
            await renewal.stop()
            try:
                await self.release(job)
            except Exception as exc:  # the store is down: the lease simply expires
                log.warning("could not release lease %s: %s", job, exc)


async def wait_for(job: str, take: Callable[[], Awaitable[T | None]], *, wait: float, poll: float = 0.01) -> T:
    """What ``take`` returns once it takes the lease (None: somebody else holds it), asking with a
    growing pause for up to ``wait`` seconds; then :class:`LeaseUnavailable`. Shared by the
    ``leases`` collection's leases and the turn lease kept on a conversation's own document."""
    deadline = time.monotonic() + wait
    delay = poll
    while (taken := await take()) is None:
        if time.monotonic() > deadline:
            raise LeaseUnavailable(f"lease {job} is held by another process")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    return taken


class Renewal:
    """Renews a held lease every third of its time until stopped, so only a dead process's lease
    runs out. Runs as a named task (``lease-<job>``): its writes are not any request's."""

    def __init__(self, job: str, renew: Callable[[], Awaitable[bool]], ttl: float) -> None:
        self.job = job
        self._task: asyncio.Task[None] | None = asyncio.create_task(self._run(renew, ttl), name=f"lease-{job}")

    async def _run(self, renew: Callable[[], Awaitable[bool]], ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                if not await renew():
                    log.error("lease %s was lost to another process while held", self.job)
                    return
            except Exception as exc:  # a store hiccup: try again at the next renewal
                log.warning("renewing lease %s failed: %s", self.job, exc)

    @property
    def running(self) -> bool:
        return self._task is not None

    async def stop(self) -> None:
        """No renewal starts after this returns (one in flight may still land: a release must also
        clear the holder, so that it matches nothing)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class HeldLease:
    """A lease a long-running loop keeps: :meth:`check` renews it once a third of it has passed,
    so a busy loop writes about three times per lease period, not once per step; a process that
    was refused asks again only after a sixth of it (a busy channel wakes every process's loop
    at each reply, and only the holder should pay a store round trip for it)."""

    def __init__(self, leases: Leases, job: str, ttl: float) -> None:
        self.leases = leases
        self.job = job
        self.ttl = ttl
        self._renewed_at: float | None = None
        self._refused_at: float | None = None

    async def check(self) -> bool:
        """True while this process holds the lease (taking or renewing it as needed)."""
        now = time.monotonic()
        if self._renewed_at is not None and now - self._renewed_at < self.ttl / 3:
            return True
        if self._refused_at is not None and now - self._refused_at < self.ttl / 6:
            return False
        if await self.leases.try_acquire(self.job, self.ttl):
            self._renewed_at, self._refused_at = now, None
            return True
        self._renewed_at, self._refused_at = None, now
        return False

    async def release(self) -> None:
        if self._renewed_at is not None:
            self._renewed_at = None
            await self.leases.release(self.job)
