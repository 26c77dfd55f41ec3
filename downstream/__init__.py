"""Downstream systems: the payment centre, the warehouse, courier tracking and the geocoder.

Owns each system's interface (a ``Protocol``), its HTTP client (``Http…``), its wire protocol and
callback parsing (one module per system: ``payment``, ``warehouse``, ``courier``, ``geocoder``),
the callback signature (``signing``), the events parsed callbacks become (``events``) and the
callback inbox that stores them before they are acknowledged (``inbox``). The embedded default of
each remote system is a stand-in in ``standins/`` speaking the same protocol; a shop's real system
replaces it by configuration (``settings``; ``docs/downstream.md``).

Must not know: after-sales requests, tickets or what an event means for a customer (that is
``backoffice.fulfilment``), the dialogue, or the channels.
"""

from __future__ import annotations

from dataclasses import dataclass

from downstream.courier import CourierTracking
from downstream.geocoder import Geocoder
from downstream.payment import PaymentCentre
from downstream.warehouse import Warehouse


@dataclass(frozen=True, slots=True)
class DownstreamSystems:
    """The systems the after-sales requests go to, as the gateway wired them."""

    payment: PaymentCentre
    warehouse: Warehouse
    courier: CourierTracking
    geocoder: Geocoder

    async def close(self) -> None:
        await self.payment.close()
        await self.warehouse.close()
        await self.courier.close()


__all__ = ["CourierTracking", "DownstreamSystems", "Geocoder", "PaymentCentre", "Warehouse"]
