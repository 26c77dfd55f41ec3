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
    """One chain of entries in a shared ``ledger`` collection."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], chain: str) -> None:
        self.collection = collection
        self.chain = chain

    async def ensure_indexes(self) -> None:
        # Uniqueness of (chain, seq) comes from _id; this index serves the ordered reads.
        await self.collection.create_index([("chain", ASCENDING), ("seq", ASCENDING)])

    async def append(self, record: dict[str, Any]) -> LedgerEntry:
        """Add a record at the end of the chain. Safe against concurrent writers: two appends
        of the same ``seq`` collide on ``_id`` and the loser retries on the new head."""
        canonical_json(record)  # reject what cannot be hashed before touching the database
        for _ in range(APPEND_ATTEMPTS):
            last = await self.collection.find_one({"chain": self.chain}, sort=[("seq", DESCENDING)])
            seq = int(last["seq"]) + 1 if last else 1
            prev_hash = str(last["hash"]) if last else GENESIS_HASH
            entry = LedgerEntry(self.chain, seq, prev_hash, entry_hash(self.chain, seq, prev_hash, record), record)
            try:
                await self.collection.insert_one(
                    {
                        "_id": f"{self.chain}:{seq:012d}",
                        "chain": self.chain,
                        "seq": seq,
                        "prev_hash": prev_hash,
                        "hash": entry.hash,
                        "record": record,
                    }
                )
            except DuplicateKeyError:
                continue
            return entry
        raise RuntimeError(f"ledger {self.chain}: could not append after {APPEND_ATTEMPTS} attempts")

    async def entries(self, **record_fields: Any) -> list[LedgerEntry]:
        """Entries in chain order, optionally only those whose record has these field values."""
        query: dict[str, Any] = {"chain": self.chain, **{f"record.{k}": v for k, v in record_fields.items()}}
        cursor = self.collection.find(query).sort("seq", ASCENDING)
        return [_entry(doc) async for doc in cursor]

    async def head(self) -> str:
        last = await self.collection.find_one({"chain": self.chain}, sort=[("seq", DESCENDING)])
        return str(last["hash"]) if last else GENESIS_HASH

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
