"""An append-only, hash-chained ledger in MongoDB, for records that must stay verifiable.

Each entry holds its position in its chain (``seq``), the previous entry's hash and its own
hash: sha256 over the canonical JSON of ``{chain, seq, prev_hash, record}``. Changing, removing,
inserting or reordering any entry breaks the chain at that point, which :meth:`verify` reports.
Dropping entries from the end leaves a valid shorter chain: publish :meth:`head` somewhere
else (a report, a signed e-mail) to detect that too.

Generic on purpose: carbon records use the ``carbon`` chain; the audit log can use its own.
Records must be JSON values (no datetimes: write ISO strings), so they hash the same after a
round trip through any database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

GENESIS_HASH = "0" * 64
APPEND_ATTEMPTS = 20


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def entry_hash(chain: str, seq: int, prev_hash: str, record: dict[str, Any]) -> str:
    return hashlib.sha256(
        canonical_json({"chain": chain, "seq": seq, "prev_hash": prev_hash, "record": record})
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    chain: str
    seq: int
    prev_hash: str
    hash: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    head: str
    problem: str | None = None
    first_bad_seq: int | None = None


class HashChainLedger:
    """One chain of entries in a shared ``ledger`` collection.

    Appending reads the chain's head from ``<collection>_heads`` (``_id`` = chain): finding the
    last entry by sorting the chain would scan it on the embedded store, every time, as the log
    grows. The head is only a pointer: entries are keyed ``<chain>:<seq>``, so a writer that died
    between storing its entry and moving the head is caught up with by the next, by ``_id``."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], chain: str) -> None:
        self.collection = collection
        self.heads = collection.database[f"{collection.name}_heads"]
        self.chain = chain

    async def ensure_indexes(self) -> None:
        # Uniqueness of (chain, seq) comes from _id; this index serves the ordered reads.
        await self.collection.create_index([("chain", ASCENDING), ("seq", ASCENDING)])
        if await self.heads.find_one({"_id": self.chain}) is None:  # a chain written before heads existed
            last = await self.collection.find_one({"chain": self.chain}, sort=[("seq", DESCENDING)])
            if last is not None:
                await self._move_head(int(last["seq"]), str(last["hash"]))

    def _id(self, seq: int) -> str:
        return f"{self.chain}:{seq:012d}"

    async def _head(self) -> tuple[int, str]:
        """The chain's last (seq, hash), by ``_id`` lookups only (a chain written before heads
        existed gets its head at start, in :meth:`ensure_indexes`)."""
        doc = await self.heads.find_one({"_id": self.chain})
        seq, head = (int(doc["seq"]), str(doc["hash"])) if doc else (0, GENESIS_HASH)
        while (following := await self.collection.find_one({"_id": self._id(seq + 1)})) is not None:
            seq, head = int(following["seq"]), str(following["hash"])
        return seq, head

    async def _move_head(self, seq: int, head: str) -> None:
        moved = await self.heads.update_one({"_id": self.chain, "seq": seq - 1}, {"$set": {"seq": seq, "hash": head}})
        if moved.matched_count == 0:
            with contextlib.suppress(DuplicateKeyError):  # another writer moved it on, or made it first
                await self.heads.insert_one({"_id": self.chain, "seq": seq, "hash": head})

    async def append(self, record: dict[str, Any]) -> LedgerEntry:
        """Add a record at the end of the chain. Safe against concurrent writers: two appends
        of the same ``seq`` collide on ``_id`` and the loser retries on the new head."""
        canonical_json(record)  # reject what cannot be hashed before touching the database
        for _ in range(APPEND_ATTEMPTS):
            last_seq, prev_hash = await self._head()
            seq = last_seq + 1
            entry = LedgerEntry(self.chain, seq, prev_hash, entry_hash(self.chain, seq, prev_hash, record), record)
            try:
                await self.collection.insert_one(
                    {
                        "_id": self._id(seq),
                        "chain": self.chain,
                        "seq": seq,
                        "prev_hash": prev_hash,
                        "hash": entry.hash,
                        "record": record,
                    }
                )
            except DuplicateKeyError:
                continue
            await self._move_head(seq, entry.hash)
            return entry
        raise RuntimeError(f"ledger {self.chain}: could not append after {APPEND_ATTEMPTS} attempts")

    async def entries(self, **record_fields: Any) -> list[LedgerEntry]:
        """Entries in chain order, optionally only those whose record has these field values."""
        query: dict[str, Any] = {"chain": self.chain, **{f"record.{k}": v for k, v in record_fields.items()}}
        cursor = self.collection.find(query).sort("seq", ASCENDING)
        return [_entry(doc) async for doc in cursor]

    async def head(self) -> str:
        return (await self._head())[1]

    async def verify(self) -> Verification:
        return verify_entries(self.chain, await self.entries())


def verify_entries(chain: str, entries: list[LedgerEntry]) -> Verification:
    """Recompute the chain; the first entry that does not fit is reported."""
    prev_hash = GENESIS_HASH
    for expected_seq, entry in enumerate(entries, start=1):
        problem: str | None = None
        if entry.seq != expected_seq:
            problem = f"entry {expected_seq} is missing (found seq {entry.seq})"
        elif entry.prev_hash != prev_hash:
            problem = f"entry {entry.seq} does not follow entry {entry.seq - 1}"
        elif entry_hash(chain, entry.seq, entry.prev_hash, entry.record) != entry.hash:
            problem = f"entry {entry.seq} was changed after it was written"
        if problem:
            return Verification(False, len(entries), prev_hash, problem, expected_seq)
        prev_hash = entry.hash
    return Verification(True, len(entries), prev_hash)


def _entry(doc: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        chain=str(doc["chain"]),
        seq=int(doc["seq"]),
        prev_hash=str(doc["prev_hash"]),
        hash=str(doc["hash"]),
        record=dict(doc["record"]),
    )
