"""Orders as the shop reports them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class OrderStatus(StrEnum):
    PAID = "paid"
    PICKING = "picking"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OrderCustomer(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    phone: str | None = None
    email: str | None = None


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: str
    name: str
    quantity: int = Field(ge=1)
    price: float = Field(ge=0)


class LogisticsEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    time: datetime
    description: str


class Order(BaseModel):
    """An order; fields beyond these are kept as given."""

    model_config = ConfigDict(extra="allow")

    order_id: str = Field(pattern=r"^\d{6,24}$")
    status: OrderStatus
    customer: OrderCustomer
    items: list[OrderItem] = Field(min_length=1)
    amount: float = Field(ge=0)
    address: str
    delivery_slot: str | None = None
    paid_at: datetime | None = None
    delivered_at: datetime | None = None
    logistics: list[LogisticsEvent] = Field(default_factory=list)

    def latest_logistics(self, count: int = 3) -> list[LogisticsEvent]:
        return sorted(self.logistics, key=lambda e: e.time, reverse=True)[:count]
