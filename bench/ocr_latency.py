"""The OCR queue's latency: from a customer's photo reaching a ticket to its fields on the ticket.

A real gateway stack in this process — the embedded nx-27017 store, the OCR worker pool
(``OCR_WORKERS`` processes, default 1, models loaded before the clock starts), the photo intake
following the tickets' change stream — and no web server: each upload stores a generated return
slip in the media store and opens a ticket with it as evidence (what a claim flow does), then
waits until the ticket lists the photo's OCR result. ``uploads`` one after another (the queue
idle), then ``uploads`` at once (the queue full). Run by ``bench/ocr_documents.py``.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from gateway import GatewayBuilder, Settings
from gateway.settings import GatewaySettings
from media_ocr.synthetic import make_sample
from nlu import OfflineNlu


def _summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{label}: n={len(ordered)}, p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, "
            f"max {ordered[-1]:.2f} s")  # fmt: skip


async def measure(uploads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(gateway=GatewaySettings(var_dir=Path(tmp) / "var"))
        gateway = GatewayBuilder(settings).nlu(OfflineNlu("bench")).build()
        await gateway.start()
        try:
            assert gateway.tickets is not None and gateway.intake is not None
            await gateway.ocr_workers.warm_up()
            rng = random.Random(5)
            photos = [make_sample("lines", "photo", rng).png() for _ in range(uploads * 2)]

            async def one(n: int) -> float:
                assert gateway.tickets is not None
                stored = await gateway.media.save(photos[n], "image/png", filename=f"slip-{n}.png")
                assert stored.media_id is not None
                started = time.perf_counter()
                ticket, _ = await gateway.tickets.open(
                    type=None, customer_id=f"bench-{n}", summary="商品破损，附照片", conversation_id=None,
                    channel="rest", order_id=f"2026{n:08d}", evidence=[stored.media_id], reason="破损",
                )  # fmt: skip
                while True:
                    fresh = await gateway.tickets.get(ticket.id)
                    if fresh is not None and fresh.ocr_result_ids:
                        return time.perf_counter() - started
                    if time.perf_counter() - started > 300:
                        raise TimeoutError(f"ticket {ticket.id} got no reading in 300 s")
                    await asyncio.sleep(0.02)

            sequential = [await one(n) for n in range(uploads)]
            together = await asyncio.gather(*(one(uploads + n) for n in range(uploads)))
            workers = settings.ocr.workers
            print(f"\n## OCR queue latency, upload to fields on the ticket ({workers} worker process(es))")
            print(_summary("one at a time", sequential))
            print(_summary(f"{uploads} at once", list(together)))
        finally:
            await gateway.stop()


if __name__ == "__main__":
    asyncio.run(measure(10))
