"""Downstream callbacks on the embedded store: how many the gateway takes per second, how long
each waits for its acknowledgement (stored, verified, then 200), and proof that replaying every
one of them changes nothing.

A real gateway (embedded nx-27017 store, its downstream stand-ins, the NLU offline: callbacks
need no understanding) is served on a loopback port. ``--requests`` refunds are created and
handed to the payment centre stand-in by the gateway's own dispatcher; the stand-in then signs
one REFUND.SUCCESS callback per refund, and they are posted to ``/downstream/payment/refunds``
by 1 and by ``--senders`` concurrent senders (separate batches). Finally every callback is
replayed (signed anew) and the store is compared with what it held before.

    .venv/bin/python bench/callbacks.py [--requests 120] [--senders 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backoffice.settings import BackofficeSettings
from gateway import GatewayBuilder, Settings, build_app
from gateway.runtime import Gateway
from gateway.settings import GatewaySettings
from nlu import OfflineNlu
from shop import Order
from shop.aftersales import RequestType, Step
from standins.callbacks import SentCallback
from supervisor import free_port

COLLECTIONS = ("aftersales_requests", "downstream_events", "downstream_jobs", "ledger", "messages", "events")


def order(number: int) -> Order:
    paid = datetime.now(UTC) - timedelta(hours=3)
    return Order.model_validate(
        {
            "order_id": f"2026120{number:07d}",
            "status": "paid",
            "customer": {"name": "压测", "phone": f"139{number:08d}", "tier": "normal"},
            "items": [{"sku": "SKU-CUP-02", "name": "保温杯 480ml", "quantity": 1, "price": 89.0}],
            "amount": 89.0,
            "address": "上海市浦东新区张江路 88 号",
            "paid_at": paid.isoformat(),
        }
    )


async def refunds_with_the_payment_centre(gateway: Gateway, count: int) -> list[str]:
    """``count`` refunds the dispatcher has submitted to the payment stand-in."""
    assert gateway.orders is not None and gateway.aftersales is not None and gateway.standins is not None
    assert gateway.downstream_worker is not None
    payment = gateway.standins.payment
    assert payment is not None
    orders = [order(n) for n in range(count)]
    await gateway.orders.upsert(orders)
    ids: list[str] = []
    for o in orders:
        request, _ = await gateway.aftersales.create(
            type=RequestType.REFUND, order_id=o.order_id, customer_id=f"bench-{o.order_id}", actor="bench",
            amount=o.amount, reason="不想要了",
        )  # fmt: skip
        await gateway.aftersales.advance(request.id, Step.APPROVED, Step.PAYMENT_PROCESSING, actor="bench")
        ids.append(request.id)
    deadline = time.monotonic() + 120
    while not all(i in payment.refunds for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"the dispatcher submitted {sum(i in payment.refunds for i in ids)} of {count} refunds")
        await gateway.downstream_worker.run_once()
        await asyncio.sleep(0.05)
    return ids


async def post_all(gateway: Gateway, callbacks: list[SentCallback], senders: int) -> tuple[float, list[float]]:
    """(callbacks per second, acknowledgement times in ms) with ``senders`` posting at once."""
    assert gateway.standins is not None and gateway.standins.payment is not None
    sender = gateway.standins.payment.callbacks
    queue = iter(callbacks)
    latencies: list[float] = []

    async def worker() -> None:
        for callback in queue:
            started = time.perf_counter()
            sent = await sender.deliver(callback)
            latencies.append((time.perf_counter() - started) * 1000)
            if sent.status != 200:
                raise SystemExit(f"callback refused: {sent.status} {sent.answer}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(senders)))
    return len(callbacks) / (time.perf_counter() - started), latencies


async def snapshot(gateway: Gateway) -> dict[str, list[str]]:
    assert gateway.store is not None
    db = gateway.store.db
    out: dict[str, list[str]] = {}
    for name in COLLECTIONS:
        out[name] = sorted([json.dumps(d, sort_keys=True, default=str) async for d in db[name].find({})])
    return out


def line(label: str, rate: float, latencies: list[float]) -> str:
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 20 else max(latencies)
    return f"{label:<22} {len(latencies):>6} {rate:>12.1f} {p50:>9.1f} {p95:>9.1f}"


async def main(requests: int, senders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = Settings(
            gateway=GatewaySettings(var_dir=Path(tmp) / "var", port=port),
            backoffice=BackofficeSettings(sweep_seconds=0),
        ).with_changes(downstream__sweep_seconds=3600)  # the bench drives the dispatcher itself
        gateway = GatewayBuilder(settings).nlu(OfflineNlu("bench: callbacks need no NLU")).build()
        server = TestServer(build_app(gateway), host="127.0.0.1", port=port)
        await server.start_server()
        try:
            assert gateway.standins is not None and gateway.standins.payment is not None
            payment = gateway.standins.payment
            print(f"creating {requests} refunds and handing them to the payment centre …", file=sys.stderr)
            ids = await refunds_with_the_payment_centre(gateway, requests)
            payment.callbacks.hold = True
            held = [await payment.settle(i) for i in ids]
            payment.callbacks.hold = False
            half = len(held) // 2
            print(f"\n{'callbacks':<22} {'n':>6} {'per second':>12} {'p50 ms':>9} {'p95 ms':>9}")
            for label, batch, n in (("1 sender", held[:half], 1), (f"{senders} senders", held[half:], senders)):
                rate, latencies = await post_all(gateway, batch, n)
                print(line(label, rate, latencies))
            await asyncio.sleep(1.0)  # the inbox applies what it acknowledged
            before = await snapshot(gateway)
            replays = [await payment.callbacks.replay(c, resign=True) for c in held]
            await asyncio.sleep(1.0)
            after = await snapshot(gateway)
            changed = [name for name in COLLECTIONS if before[name] != after[name]]
            accepted = sum(r.status == 200 for r in replays)
            print(
                f"\nreplayed {len(replays)} callbacks (signed anew): {accepted} acknowledged, "
                f"{'nothing changed' if not changed else 'CHANGED: ' + ', '.join(changed)}"
            )
            done = sum(
                1
                for r in await gateway.aftersales.in_status(Step.COMPLETED, limit=requests * 2)  # type: ignore[union-attr]
                if r.id in set(ids)
            )
            print(f"refunds completed by their callbacks: {done} of {requests}")
        finally:
            await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=120, help="refunds (half posted by 1 sender, half by many)")
    parser.add_argument("--senders", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.senders))
