"""The shop's order system, behind an interface.

Owns the :class:`OrderService` interface the dialogue uses to read and act on orders, the
order model, and the embedded demo shop (an ``orders`` collection) with its seeding command.
A real shop's order API replaces :class:`MongoOrderService` by implementing the same interface.

Must not know about channels, NLU or dialogue.
"""

from shop.models import LogisticsEvent, Order, OrderCustomer, OrderItem, OrderStatus
from shop.orders import MongoOrderService, OrderService, SeedError, load_orders_file

__all__ = [
    "LogisticsEvent",
    "MongoOrderService",
    "Order",
    "OrderCustomer",
    "OrderItem",
    "OrderService",
    "OrderStatus",
    "SeedError",
    "load_orders_file",
]
