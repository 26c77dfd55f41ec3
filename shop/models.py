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
    tier: str | None = Field(default=None, description="membership level: regular, silver, gold, platinum, vip")


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: str
    name: str
    quantity: int = Field(ge=1)
    price: float = Field(ge=0)
    category: str | None = Field(
        default=None, description="after-sales category, e.g. fresh, customised, hygiene, gift (see the policy file)"
    )
    opened: bool = Field(default=False, description="hygiene items: the seal is broken")


class LogisticsEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    time: datetime
    description: str


class OrderChange(BaseModel):
    """One change made to an order after it was placed (address, delivery slot, cancellation)."""

    field: str
    old: str | None = None
    new: str | None = None
    at: datetime
    actor: str


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
    changes: list[OrderChange] = Field(default_factory=list)

    def belongs_to(self, identities: dict[str, str]) -> bool:
        """True when the customer's verified phone or email is the one on the order."""
        phone, email = identities.get("phone"), identities.get("email")
        return bool(
            (phone and self.customer.phone and phone == self.customer.phone)
            or (email and self.customer.email and email.lower() == self.customer.email.lower())
        )

    def item(self, sku: str) -> OrderItem | None:
        return next((i for i in self.items if i.sku == sku), None)

    def latest_logistics(self, count: int = 3) -> list[LogisticsEvent]:
        return sorted(self.logistics, key=lambda e: e.time, reverse=True)[:count]
