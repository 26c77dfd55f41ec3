"""Support for the tests of the after-sales loop: a gateway served on a known loopback port (the
downstream stand-ins call it back there), its stand-ins, and readers for what the loop wrote."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from backoffice.settings import BackofficeSettings
from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from standins.courier import CourierStandIn
from standins.payment_centre import PaymentCentreStandIn
from standins.warehouse import WarehouseStandIn
from store.mongo import ConversationStore
from supervisor import free_port
from tests.conftest import DEMO_ORDERS
from tests.helpers import CUSTOMER_TOKEN_SECRET, wait_for


def loop_settings(tmp_path: Path, port: int, **backoffice: Any) -> Settings:
    """A gateway on ``port`` with a fast outbox, automatic route plans without delay, short solves."""
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var", port=port),
        outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05),
        backoffice=BackofficeSettings(sweep_seconds=0, autoplan_delay_seconds=0, autoplan_time_limit=1.0, **backoffice),
    ).with_channel("rest", customer_token_secret=CUSTOMER_TOKEN_SECRET)
    return settings.with_changes(downstream__sweep_seconds=0.5)


@contextlib.asynccontextmanager
async def served(gateway: Gateway, port: int) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1", port=port)) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        yield http


@contextlib.asynccontextmanager
async def loop_gateway(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, *, settings: Settings | None = None
) -> AsyncIterator[tuple[Gateway, TestClient[object, object]]]:
    settings = settings or loop_settings(tmp_path, free_port())
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    async with served(gateway, settings.gateway.port) as http:
        yield gateway, http


def standins(gateway: Gateway) -> tuple[PaymentCentreStandIn, WarehouseStandIn, CourierStandIn]:
    assert gateway.standins is not None
    payment, warehouse, courier = gateway.standins.payment, gateway.standins.warehouse, gateway.standins.courier
    assert payment is not None and warehouse is not None and courier is not None
    return payment, warehouse, courier


async def settled(gateway: Gateway) -> None:
    """Wait until the dispatcher has nothing left to send and no callback is pending."""
    assert gateway.downstream_worker is not None and gateway.fulfilment is not None
    for _ in range(3):
        await gateway.downstream_worker.run_once()
    await wait_for(lambda: _no_pending(gateway), 10)


async def _no_pending(gateway: Gateway) -> bool:
    assert gateway.fulfilment is not None
    return await gateway.fulfilment.inbox.count(status="pending") == 0


async def snapshot(store: ConversationStore) -> dict[str, list[dict[str, Any]]]:
    """Everything the loop writes, to compare before and after a replay."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("aftersales_requests", "pickups", "followups", "parcels", "tickets", "downstream_events",
                 "downstream_jobs", "ledger"):  # fmt: skip
        docs = [d async for d in store.db[name].find({})]
        out[name] = sorted(docs, key=lambda d: str(d["_id"]))
    out["outbox"] = sorted(
        [
            {k: d.get(k) for k in ("_id", "conversation_id", "text", "channel_message_id")}
            async for d in store.db["messages"].find({"direction": "out"})
        ],
        key=lambda d: str(d["_id"]),
    )
    return out
