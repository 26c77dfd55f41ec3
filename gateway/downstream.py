"""Wiring the downstream systems: a configured system is reached over HTTP at its URL with its
secret; an unconfigured one is replaced by its embedded stand-in (``standins/``), started on a
loopback port with a secret made for this start, so ``make run`` closes the after-sales loop with
nothing set. The callbacks come back to the gateway's own ``/downstream/…`` routes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from downstream import DownstreamSystems
from downstream.courier import HttpCourier
from downstream.geocoder import OfflineDistrictGeocoder
from downstream.payment import HttpPaymentCentre
from downstream.settings import DownstreamSettings
from downstream.warehouse import HttpWarehouse
from gateway.settings import Settings
from standins.courier import CourierStandIn
from standins.payment_centre import PaymentCentreStandIn
from standins.warehouse import WarehouseStandIn

PAYMENT_CALLBACK = "/downstream/payment/refunds"
WAREHOUSE_CALLBACK = "/downstream/warehouse/events"
COURIER_CALLBACKS = "/downstream/courier"
"""``…/tracking``, ``…/pickups`` and ``…/work-orders`` under it."""


@dataclass(slots=True)
class StandIns:
    """The embedded stand-ins this gateway started (those of the systems not configured)."""

    payment: PaymentCentreStandIn | None = None
    warehouse: WarehouseStandIn | None = None
    courier: CourierStandIn | None = None

    async def stop(self) -> None:
        for server in (self.payment, self.warehouse, self.courier):
            if server is not None:
                await server.stop()


@dataclass(frozen=True, slots=True)
class Secrets:
    payment: str
    warehouse: str
    courier: str


def callback_base(settings: Settings) -> str:
    configured = settings.downstream.callback_base_url or settings.gateway.public_base_url
    if configured:
        return configured.rstrip("/")
    host = settings.gateway.host if settings.gateway.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.gateway.port}"


async def connect(settings: Settings) -> tuple[DownstreamSystems, Secrets, StandIns]:
    """The systems as configured, starting a stand-in for each one that is not."""
    config: DownstreamSettings = settings.downstream
    base = callback_base(settings)
    standins = StandIns()
    pace = config.standin_pace_seconds
    payment_url, payment_secret = config.payment_url, config.payment_secret
    if not payment_url:
        payment_secret = secrets.token_hex(32)
        standins.payment = PaymentCentreStandIn(payment_secret, pace=pace)
        await standins.payment.start()
        payment_url = standins.payment.base_url
    warehouse_url, warehouse_secret = config.warehouse_url, config.warehouse_secret
    if not warehouse_url:
        warehouse_secret = secrets.token_hex(32)
        standins.warehouse = WarehouseStandIn(warehouse_secret, pace=pace)
        await standins.warehouse.start()
        warehouse_url = standins.warehouse.base_url
    courier_url, courier_secret = config.courier_url, config.courier_secret
    if not courier_url:
        courier_secret = secrets.token_hex(32)
        standins.courier = CourierStandIn(courier_secret, pace=pace)
        await standins.courier.start()
        courier_url = standins.courier.base_url
        if standins.warehouse is not None:  # the stand-ins' world: a collected return reaches the warehouse
            standins.courier.on_delivered = standins.warehouse.parcel_arrived
    assert payment_secret and warehouse_secret and courier_secret  # settings refuse a URL without its secret
    systems = DownstreamSystems(
        payment=HttpPaymentCentre(payment_url, payment_secret, f"{base}{PAYMENT_CALLBACK}"),
        warehouse=HttpWarehouse(warehouse_url, warehouse_secret, f"{base}{WAREHOUSE_CALLBACK}"),
        courier=HttpCourier(courier_url, courier_secret, config.courier_key, f"{base}{COURIER_CALLBACKS}"),
        geocoder=OfflineDistrictGeocoder(),
    )
    return systems, Secrets(payment_secret, warehouse_secret, courier_secret), standins
