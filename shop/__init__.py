"""The shop's order system, behind an interface.

Owns the :class:`OrderService` interface the dialogue uses to read and act on orders (and its
read-only part :class:`OrderLookup`), the order model, the after-sales requests and rules
(``shop.aftersales``, ``shop.policy``), and the embedded demo shop (an ``orders`` collection)
with its seeding command.
A real shop's order API replaces :class:`MongoOrderService` by implementing the same interface.

Must not know about channels, NLU or dialogue.
"""

from shop.models import LogisticsEvent, Order, OrderChange, OrderCustomer, OrderItem, OrderStatus
from shop.orders import (
    MongoOrderService,
    OrderActionRefused,
    OrderLookup,
    OrderService,
    SeedError,
    load_orders_file,
)

__all__ = [
    "LogisticsEvent",
    "MongoOrderService",
    "Order",
    "OrderActionRefused",
    "OrderChange",
    "OrderCustomer",
    "OrderItem",
    "OrderLookup",
    "OrderService",
    "OrderStatus",
    "SeedError",
    "load_orders_file",
]
