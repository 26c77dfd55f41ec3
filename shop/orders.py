"""The order-service interface and the embedded demo shop on MongoDB."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pymongo import DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from errors import Conflict, UserError
from shop.models import Order, OrderChange, OrderStatus
from textpatterns import compile as compile_pattern


class SeedError(UserError):
    """An orders file that cannot be loaded; the message says where and why."""

    code = "invalid_orders_file"


CHANGEABLE = (OrderStatus.PAID, OrderStatus.PICKING)
"""Before the parcel leaves the warehouse: its address, slot and existence may still change."""


class OrderActionRefused(Conflict):
    """The shop refused a change, e.g. the warehouse picked the order in the meantime."""

    code = "order_action_refused"

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id}: {reason}", order_id=order_id)
        self.order_id = order_id
        self.reason = reason


class OrderLookup(ABC):
    """Reading orders: all that photo checks and summaries need."""

    @abstractmethod
    async def get(self, order_id: str) -> Order | None: ...

    @abstractmethod
    async def recent_for_customer(
        self, *, phone: str | None = None, email: str | None = None, limit: int = 5
    ) -> list[Order]: ...


class OrderService(OrderLookup):
    """What self-service needs from the shop's order system: reading and acting on orders."""

    @abstractmethod
    async def change_address(self, order_id: str, address: str, *, actor: str) -> Order:
        """Write a new delivery address; only before the parcel leaves (``paid`` or ``picking``)."""

    @abstractmethod
    async def change_delivery_slot(self, order_id: str, slot: str, *, actor: str) -> Order:
        """Write a new delivery slot (``YYYY-MM-DD HH:MM-HH:MM``); only before the parcel leaves."""

    @abstractmethod
    async def cancel(self, order_id: str, *, actor: str, reason: str) -> Order:
        """Cancel an order that has not left the warehouse; the refund is the after-sales service's job."""


class MongoOrderService(OrderService):
    """The embedded demo shop: orders in the ``orders`` collection of the gateway's database."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.orders = db["orders"]

    async def ensure_indexes(self) -> None:
        await self.orders.create_index("order_id", unique=True)
        await self.orders.create_index("customer.phone")
        await self.orders.create_index("customer.email")

    async def get(self, order_id: str) -> Order | None:
        doc = await self.orders.find_one({"order_id": order_id}, {"_id": 0})
        return Order.model_validate(doc) if doc else None

    async def recent_for_customer(
        self, *, phone: str | None = None, email: str | None = None, limit: int = 5
    ) -> list[Order]:
        found: dict[str, Order] = {}
        for field, value in (("customer.phone", phone), ("customer.email", email)):
            if not value:
                continue
            cursor = self.orders.find({field: value}, {"_id": 0}).sort("paid_at", DESCENDING).limit(limit)
            async for doc in cursor:
                order = Order.model_validate(doc)
                found[order.order_id] = order
        ranked = sorted(found.values(), key=lambda o: (o.paid_at is not None, o.paid_at), reverse=True)
        return ranked[:limit]

    async def change_address(self, order_id: str, address: str, *, actor: str) -> Order:
        return await self._change_before_shipping(order_id, "address", address, actor)

    async def change_delivery_slot(self, order_id: str, slot: str, *, actor: str) -> Order:
        return await self._change_before_shipping(order_id, "delivery_slot", slot, actor)

    async def cancel(self, order_id: str, *, actor: str, reason: str) -> Order:
        return await self._change_before_shipping(order_id, "status", OrderStatus.CANCELLED.value, actor, note=reason)

    async def _change_before_shipping(
        self, order_id: str, field: str, value: str, actor: str, *, note: str | None = None
    ) -> Order:
        order = await self.get(order_id)
        if order is None:
            raise OrderActionRefused(order_id, "no such order")
        if order.status not in CHANGEABLE:
            raise OrderActionRefused(order_id, f"the order is {order.status.value}: it has left the warehouse")
        old = getattr(order, field)
        old_text = old.value if isinstance(old, OrderStatus) else old
        change = OrderChange(
            field=field,
            old=old_text,
            new=value if note is None else f"{value} ({note})",
            at=datetime.now(UTC),
            actor=actor,
        )
        changes = [c.model_dump(mode="json") for c in order.changes] + [change.model_dump(mode="json")]
        # The status filter makes the write lose cleanly against the warehouse shipping the order.
        result = await self.orders.update_one(
            {"order_id": order_id, "status": order.status.value, field: old_text},
            {"$set": {field: value, "changes": changes}},
        )
        if result.matched_count != 1:
            raise OrderActionRefused(order_id, "the order changed meanwhile; try again")
        updated = await self.get(order_id)
        assert updated is not None
        return updated

    async def upsert(self, orders: list[Order]) -> int:
        """Insert or replace orders by ``order_id``; returns how many were written."""
        if not orders:
            return 0
        operations = [
            UpdateOne({"order_id": o.order_id}, {"$set": o.model_dump(mode="json")}, upsert=True) for o in orders
        ]
        result = await self.orders.bulk_write(operations, ordered=True)
        return result.upserted_count + result.modified_count + result.matched_count - result.modified_count


_RELATIVE = compile_pattern(r"^now((?:[+-]\d+(?:\.\d+)?[dhm])*)$")
_OFFSET = compile_pattern(r"([+-]\d+(?:\.\d+)?)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_TIME_FIELDS = ("paid_at", "delivered_at", "picking_since")


def _absolute(value: Any, now: datetime) -> Any:
    """``"now-3d"``, ``"now-2d-4h"``: a time relative to when the file is loaded (the demo shop's
    orders stay as fresh as the day ``make run`` starts); anything else unchanged."""
    if not isinstance(value, str) or not (match := _RELATIVE.match(value.strip())):
        return value
    moment = now
    for amount, unit in _OFFSET.findall(match.group(1)):
        moment += timedelta(**{_UNITS[unit]: float(amount)})
    return moment.isoformat()


def _with_times(raw: Any, now: datetime) -> Any:
    if not isinstance(raw, dict):
        return raw
    order = {k: _absolute(v, now) if k in _TIME_FIELDS else v for k, v in raw.items()}
    if isinstance(order.get("logistics"), list):
        order["logistics"] = [
            {**e, "time": _absolute(e.get("time"), now)} if isinstance(e, dict) else e for e in order["logistics"]
        ]
    return order


def load_orders_file(path: Path, now: datetime | None = None) -> list[Order]:
    """Read and validate ``{"orders": [...]}``; every problem is reported before anything is written.
    Times may be given relative to ``now`` (default: the moment of loading) as ``"now-3d-4h"``."""
    now = now or datetime.now(UTC)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SeedError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise SeedError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("orders"), list):
        raise SeedError(f'{path}: expected an object {{"orders": [...]}}')
    orders: list[Order] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(payload["orders"]):
        try:
            order = Order.model_validate(_with_times(raw, now))
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"])
                problems.append(f"orders[{index}].{where}: {error['msg']}")
            continue
        if order.order_id in seen:
            problems.append(f"orders[{index}].order_id: duplicate {order.order_id}")
        seen.add(order.order_id)
        orders.append(order)
    if problems:
        raise SeedError(f"{path}: " + "; ".join(problems[:20]))
    return orders
