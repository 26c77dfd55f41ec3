"""The audit log: an append-only, hash-chained record (the ``audit`` chain of
``backoffice.ledger``) of every ticket transition, every step of a money or goods request, and
every configuration or staff change, with who did it, when and why.

Each audited thing carries an ``entry_id`` (a ticket timeline entry's id, ``<request>#<n>`` for
request steps) so that writing it twice after a crash stores it once, and so :func:`verify` can
compare the tickets and requests with the log: an edited or deleted log entry breaks the chain,
and a ticket or request step with no matching log entry (or a different one) is reported too.
Entries cut from the end of the log with their tickets' steps are only caught against a
published head hash (``run.py audit verify --head``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from backoffice.ledger import HashChainLedger, LedgerEntry, verify_entries
from shop.aftersales import AfterSalesRequest

log = logging.getLogger(__name__)

AUDIT_CHAIN = "audit"


@dataclass(frozen=True, slots=True)
class AuditReport:
    ok: bool
    entries: int
    head: str
    problems: list[str] = field(default_factory=list)
    checked_tickets: int = 0
    checked_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "problems": self.problems,
            "checked_tickets": self.checked_tickets,
            "checked_requests": self.checked_requests,
        }


class AuditLog:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.collection = db["ledger"]
        self.ledger = HashChainLedger(self.collection, AUDIT_CHAIN)

    async def ensure_indexes(self) -> None:
        await self.ledger.ensure_indexes()
        await self.collection.create_index([("record.entry_id", ASCENDING)])

    async def record(
        self, *, entry_id: str, kind: str, subject: str, actor: str, at: str, data: dict[str, Any] | None = None
    ) -> LedgerEntry:
        """Append one record, unless this ``entry_id`` is in the log already (then return that)."""
        existing = await self.collection.find_one({"chain": AUDIT_CHAIN, "record.entry_id": entry_id})
        if existing is not None:
            return LedgerEntry(
                str(existing["chain"]), int(existing["seq"]), str(existing["prev_hash"]), str(existing["hash"]),
                dict(existing["record"]),
            )  # fmt: skip
        record = {"entry_id": entry_id, "kind": kind, "subject": subject, "actor": actor, "at": at, "data": data or {}}
        return await self.ledger.append(record)

    async def request_steps(self, request: AfterSalesRequest) -> None:
        """Every step of a money or goods request (the shop calls this after each change)."""
        for index, entry in enumerate(request.timeline):
            stored = entry.model_dump(mode="json")
            await self.record(
                entry_id=f"{request.id}#{index}",
                kind="aftersales_step",
                subject=f"request:{request.id}",
                actor=entry.actor,
                at=str(stored["at"]),
                data={
                    "to": entry.step.value,
                    "note": entry.note,
                    "type": request.type.value,
                    "order_id": request.order_id,
                    "amount": request.amount,
                },
            )

    async def for_subject(self, subject: str) -> list[LedgerEntry]:
        return await self.ledger.entries(subject=subject)

    async def head(self) -> str:
        return await self.ledger.head()

    async def verify(self, *, expected_head: str | None = None) -> AuditReport:
        entries = await self.ledger.entries()
        chain = verify_entries(AUDIT_CHAIN, entries)
        problems: list[str] = []
        if not chain.ok:
            problems.append(f"audit chain broken: {chain.problem}")
        head = entries[-1].hash if entries else chain.head
        if expected_head is not None and expected_head not in {e.hash for e in entries}:
            problems.append(f"the published head {expected_head[:16]}… is not in the log (entries were removed)")
        by_entry = {str(e.record.get("entry_id")): e for e in entries}
        tickets = 0
        async for doc in self.db["tickets"].find({}):
            tickets += 1
            for entry in doc.get("timeline", []):
                entry_id = entry.get("id")
                if not entry_id:
                    continue  # written before the audit log existed
                problems += _compare(
                    f"ticket {doc['_id']}", entry_id, by_entry.get(entry_id), entry.get("status"), entry,
                    pending=bool(doc.get("effects_pending")),
                )  # fmt: skip
        requests = 0
        async for doc in self.db["aftersales_requests"].find({"audited": True}):
            requests += 1
            for index, entry in enumerate(doc.get("timeline", [])):
                entry_id = f"{doc['_id']}#{index}"
                problems += _compare(
                    f"request {doc['_id']}", entry_id, by_entry.get(entry_id), entry.get("step"), entry,
                    pending=bool(doc.get("audit_pending")),
                )  # fmt: skip
        return AuditReport(not problems, len(entries), head, problems, tickets, requests)


def _compare(
    what: str, entry_id: str, logged: LedgerEntry | None, status: Any, entry: dict[str, Any], *, pending: bool
) -> list[str]:
    if logged is None:
        if pending:
            return []  # written a moment ago; the sweep appends it
        return [f"{what}: step {entry_id} ({status}) has no audit entry (deleted from the log?)"]
    record = logged.record
    data = record.get("data", {})
    if data.get("to") != status or record.get("actor") != entry.get("actor") or record.get("at") != entry.get("at"):
        return [f"{what}: step {entry_id} differs from audit entry {logged.seq} (edited?)"]
    return []
