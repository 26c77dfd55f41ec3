"""Pick-up requests and route plans in MongoDB.

``pickups``: one document per approved return or exchange pick-up (``_id`` is the caller's
request id, so asking twice stores it once). ``route_plans``: one document per plan, newest
last by ``_id``. Dates are ``YYYY-MM-DD`` strings and times ``HH:MM`` strings on the service
day, and timestamps ISO strings: nothing is compared as a datetime (nx-27017 stores datetimes
written with ``$set`` as strings).

:func:`PickupStore.request_pickup` is what the self-service return flow calls once a return or
exchange is approved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.routing.fleet import CLOCK, GeoPoint, clock_seconds

DATE = r"^\d{4}-\d{2}-\d{2}$"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class PickupStatus(StrEnum):
    REQUESTED = "requested"
    PLANNED = "planned"
    PICKED_UP = "picked_up"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (PickupStatus.REQUESTED.value, PickupStatus.PLANNED.value)


class Parcels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=50)
    weight_kg: float = Field(ge=0, le=500)
    volume_l: float = Field(ge=0, le=3000)


class ExchangeDelivery(BaseModel):
    """The replacement item handed over on the same call."""

    model_config = ConfigDict(extra="forbid")

    sku: str | None = None
    count: int = Field(ge=1, le=50)
    weight_kg: float = Field(ge=0, le=500)
    volume_l: float = Field(ge=0, le=3000)


class PickupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pickup_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    order_id: str = Field(pattern=r"^\d{6,24}$")
    kind: Literal["return", "exchange"]
    customer_name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    address: str = Field(min_length=1, max_length=300)
    location: GeoPoint | None = Field(default=None, description="None until the address is geocoded")
    date: str = Field(pattern=DATE, description="service day, local")
    window_start: str = Field(pattern=CLOCK)
    window_end: str = Field(pattern=CLOCK)
    parcels: Parcels
    exchange: ExchangeDelivery | None = None
    depot_id: str | None = Field(default=None, description="return warehouse, when it must be a given one")

    @model_validator(mode="after")
    def _consistent(self) -> PickupRequest:
        if clock_seconds(self.window_end) <= clock_seconds(self.window_start):
            raise ValueError("window_end must be after window_start")
        if (self.kind == "exchange") != (self.exchange is not None):
            raise ValueError("an exchange needs its exchange delivery, and only an exchange has one")
        return self


class Pickup(PickupRequest):
    status: PickupStatus = PickupStatus.REQUESTED
    plan_id: str | None = None
    created_at: str
    location_precision: str | None = Field(
        default=None, description="rooftop, street, district, city or province; None: given with the request"
    )
    location_region: str | None = Field(
        default=None, description="what a coarse location stands for, e.g. 上海市闵行区"
    )
    courier: dict[str, Any] | None = Field(default=None, description="the courier's booking and who was assigned")
    tracking_number: str | None = Field(default=None, description="the return parcel's waybill once collected")
    attempts: list[dict[str, Any]] = Field(default_factory=list, description="failed visits: date, reason, plan")
    last_event_ms: int = Field(default=0, description="source time of the newest courier event applied")


class PickupStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], on_requested: Callable[[], None] | None = None) -> None:
        self.pickups = db["pickups"]
        self.on_requested = on_requested
        """Told of every new pick-up (the downstream dispatcher geocodes and books it)."""
        self.plans = db["route_plans"]
        self.ledger_collection = db["ledger"]

    async def ensure_indexes(self) -> None:
        await self.pickups.create_index([("date", ASCENDING), ("status", ASCENDING)])
        await self.pickups.create_index("order_id")
        await self.pickups.create_index("status")  # the dispatcher's sweeps; nx-27017 uses single-field indexes only
        await self.plans.create_index("date")

    # -- pick-ups --------------------------------------------------------------------------

    async def request_pickup(self, request: PickupRequest) -> tuple[Pickup, bool]:
        """Store an approved pick-up; returns it and whether it is new. Idempotent by
        ``pickup_id``: a repeated request returns the stored pick-up unchanged."""
        doc = {"_id": request.pickup_id, **request.model_dump(mode="json", exclude={"pickup_id"})}
        doc.update(status=PickupStatus.REQUESTED.value, plan_id=None, created_at=now_iso())
        try:
            await self.pickups.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(request.pickup_id)
            if existing is None:
                raise
            return existing, False
        if self.on_requested is not None:
            self.on_requested()
        return _pickup(doc), True

    async def get(self, pickup_id: str) -> Pickup | None:
        doc = await self.pickups.find_one({"_id": pickup_id})
        return _pickup(doc) if doc else None

    async def open_pickups(self, date: str) -> list[Pickup]:
        """Pick-ups of that day still to plan or already planned (a new plan replaces the old)."""
        cursor = self.pickups.find({"date": date, "status": {"$in": list(OPEN_STATUSES)}}).sort("_id", ASCENDING)
        return [_pickup(d) async for d in cursor]

    async def by_ids(self, pickup_ids: list[str]) -> list[Pickup]:
        cursor = self.pickups.find({"_id": {"$in": pickup_ids}}).sort("_id", ASCENDING)
        return [_pickup(d) async for d in cursor]

    async def set_status(
        self, pickup_ids: list[str], status: PickupStatus, plan_id: str | None = None, *, date: str | None = None
    ) -> None:
        """Mark open pick-ups (of ``date``, when given): one the courier collected or failed, or the
        customer cancelled, while the solver ran, or one rebooked for another day, keeps its state."""
        if pickup_ids:
            changes: dict[str, Any] = {"status": status.value, "updated_at": now_iso()}
            if plan_id is not None:
                changes["plan_id"] = plan_id
            query: dict[str, Any] = {"_id": {"$in": pickup_ids}, "status": {"$in": list(OPEN_STATUSES)}}
            if date is not None:
                query["date"] = date
            await self.pickups.update_many(query, {"$set": changes})

    async def cancel(self, pickup_id: str) -> bool:
        result = await self.pickups.update_one(
            {"_id": pickup_id, "status": {"$in": list(OPEN_STATUSES)}},
            {"$set": {"status": PickupStatus.CANCELLED.value, "updated_at": now_iso()}},
        )
        return result.modified_count == 1

    async def unlocated(self, limit: int = 100) -> list[Pickup]:
        """Open pick-ups without coordinates (waiting for the geocoder)."""
        cursor = self.pickups.find({"status": {"$in": list(OPEN_STATUSES)}, "location": None}).limit(limit)
        return [_pickup(d) async for d in cursor]

    async def open_all(self, limit: int = 1000) -> list[Pickup]:
        cursor = self.pickups.find({"status": {"$in": list(OPEN_STATUSES)}}).sort("_id", ASCENDING).limit(limit)
        return [_pickup(d) async for d in cursor]

    async def set_location(self, pickup_id: str, location: GeoPoint, *, precision: str, region: str | None) -> bool:
        result = await self.pickups.update_one(
            {"_id": pickup_id, "location": None},
            {"$set": {"location": location.model_dump(), "location_precision": precision, "location_region": region,
                      "updated_at": now_iso()}},
        )  # fmt: skip
        return result.modified_count == 1

    async def update(self, pickup_id: str, changes: dict[str, Any], *, expect_status: list[str] | None = None) -> bool:
        """Change fields of one pick-up (only while its status is one of ``expect_status``, when given)."""
        query: dict[str, Any] = {"_id": pickup_id}
        if expect_status is not None:
            query["status"] = {"$in": expect_status}
        result = await self.pickups.update_one(query, {"$set": {**changes, "updated_at": now_iso()}})
        return result.matched_count == 1

    async def become_exchange(self, pickup_id: str, exchange: ExchangeDelivery) -> bool:
        """A return the customer turned into an exchange: the same visit now also brings the new item."""
        result = await self.pickups.update_one(
            {"_id": pickup_id, "status": {"$in": list(OPEN_STATUSES)}},
            {"$set": {"kind": "exchange", "exchange": exchange.model_dump(mode="json"), "updated_at": now_iso()}},
        )
        return result.modified_count == 1

    # -- plans -----------------------------------------------------------------------------

    async def save_plan(self, plan: dict[str, Any]) -> None:
        await self.plans.insert_one(dict(plan))

    async def get_plan(self, plan_id: str) -> dict[str, Any] | None:
        return await self.plans.find_one({"_id": plan_id})

    async def latest_plan(self, date: str | None = None) -> dict[str, Any] | None:
        query = {"date": date} if date else {}
        return await self.plans.find_one(query, sort=[("_id", DESCENDING)])

    async def supersede(self, plan_id: str, by: str) -> None:
        await self.plans.update_one({"_id": plan_id}, {"$set": {"status": "superseded", "superseded_by": by}})


def _pickup(doc: dict[str, Any]) -> Pickup:
    data = {("pickup_id" if k == "_id" else k): v for k, v in doc.items() if k != "updated_at"}
    return Pickup.model_validate(data)
