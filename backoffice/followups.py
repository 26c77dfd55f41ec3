"""Follow-up tasks: the record behind every promise the bot makes that someone else must keep.

"已给仓库下了加急单" is a ``warehouse_expedite`` task, "已向快递公司提交加急派送" a
``courier_expedite``, "已为您向快递公司发起查件" a ``courier_inquiry`` (a parcel with no scan for
too long, or a problem scan), "已为您催促售后单…" a ``request_expedite``: each names the order (and
request), who asked, when it is due and its state. Agents see them, and the downstream dispatcher
takes them from here to whoever keeps the promise (``backoffice.dispatch``); the answers close
them and reach the customer (``backoffice.fulfilment``). Counting a customer's urges on an order,
across conversations and channels, reads them too.

Knows nothing of the dialogue or the channels.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from store.mongo import new_id


class FollowUpKind(StrEnum):
    WAREHOUSE_EXPEDITE = "warehouse_expedite"
    """Pick and ship an order that is waiting in the warehouse first."""
    COURIER_EXPEDITE = "courier_expedite"
    """Hurry a parcel on its way."""
    COURIER_INQUIRY = "courier_inquiry"
    """Find out where a parcel with no scan for too long is, and report back."""
    REQUEST_EXPEDITE = "request_expedite"
    """Hurry an after-sales request (its reviewer, the payment centre, the warehouse)."""
    ORDER_REDIRECT = "order_redirect"
    """Redirect a parcel on its way to another address (an agent's action; the warehouse does it)."""


URGES = frozenset({FollowUpKind.WAREHOUSE_EXPEDITE, FollowUpKind.COURIER_EXPEDITE, FollowUpKind.REQUEST_EXPEDITE})

DUE_WITHIN: dict[FollowUpKind, timedelta] = {
    FollowUpKind.WAREHOUSE_EXPEDITE: timedelta(hours=24),
    FollowUpKind.COURIER_EXPEDITE: timedelta(hours=24),
    FollowUpKind.COURIER_INQUIRY: timedelta(hours=24),
    FollowUpKind.REQUEST_EXPEDITE: timedelta(hours=24),
    FollowUpKind.ORDER_REDIRECT: timedelta(hours=24),
}
"""How long whoever keeps the promise has: what the bot tells the customer comes from here."""


class FollowUp(BaseModel):
    id: str
    kind: FollowUpKind
    order_id: str
    request_id: str | None = None
    customer_id: str | None = None
    conversation_id: str | None = None
    channel: str | None = None
    status: str = "open"
    note: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="what the task needs, e.g. a redirect's address")
    result: str | None = Field(default=None, description="what whoever kept the promise answered")
    due_at: datetime
    created_at: datetime


class FollowUps:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], on_created: Callable[[], None] | None = None) -> None:
        self.tasks = db["followups"]
        self.on_created = on_created
        """Told of every new task (the downstream dispatcher wakes up to send it)."""

    async def ensure_indexes(self) -> None:
        await self.tasks.create_index("order_id")
        await self.tasks.create_index("status")  # the due sweep; nx-27017 uses single-field indexes only
        await self.tasks.create_index("open_key", unique=True, partialFilterExpression={"open_key": {"$exists": True}})

    async def create(
        self,
        kind: FollowUpKind,
        order_id: str,
        *,
        request_id: str | None = None,
        customer_id: str | None = None,
        conversation_id: str | None = None,
        channel: str | None = None,
        note: str | None = None,
        once: bool = False,
        data: dict[str, Any] | None = None,
    ) -> tuple[FollowUp, bool]:
        """A new open task (due by its kind's time); with ``once``, the open one of this kind for
        the order if there is one, and ``False``."""
        now = datetime.now(UTC)
        task = FollowUp(
            id=new_id(),
            kind=kind,
            order_id=order_id,
            request_id=request_id,
            customer_id=customer_id,
            conversation_id=conversation_id,
            channel=channel,
            note=note,
            data=data or {},
            due_at=now + DUE_WITHIN[kind],
            created_at=now,
        )
        doc = {**task.model_dump(mode="json", exclude={"id"}), "_id": task.id}
        if once:
            doc["open_key"] = f"{order_id}:{kind.value}"
            try:
                await self.tasks.insert_one(doc)
            except DuplicateKeyError:
                existing = await self.tasks.find_one({"open_key": doc["open_key"]})
                if existing is not None:
                    return _task(existing), False
                raise
            if self.on_created is not None:
                self.on_created()
            return task, True
        await self.tasks.insert_one(doc)
        if self.on_created is not None:
            self.on_created()
        return task, True

    async def get(self, task_id: str) -> FollowUp | None:
        doc = await self.tasks.find_one({"_id": task_id})
        return _task(doc) if doc else None

    async def open_tasks(self, limit: int = 500) -> list[FollowUp]:
        return [_task(d) async for d in self.tasks.find({"status": "open"}).limit(limit)]

    async def for_order(self, order_id: str) -> list[FollowUp]:
        return sorted([_task(d) async for d in self.tasks.find({"order_id": order_id})], key=lambda t: t.created_at)

    async def urges(self, order_id: str) -> int:
        """How often the customer has urged this order (or a request on it), on any channel."""
        return sum(1 for task in await self.for_order(order_id) if task.kind in URGES)

    async def close(self, task_id: str, *, note: str | None = None, result: str | None = None) -> bool:
        """Done (with what was answered); False when it was closed already."""
        changes: dict[str, Any] = {"status": "done", "closed_at": datetime.now(UTC).isoformat()}
        if note:
            changes["note"] = note
        if result:
            changes["result"] = result
        outcome = await self.tasks.update_one(
            {"_id": task_id, "status": "open"}, {"$set": changes, "$unset": {"open_key": ""}}
        )
        return outcome.modified_count == 1


def _task(doc: dict[str, Any]) -> FollowUp:
    return FollowUp.model_validate({**doc, "id": doc["_id"]})
