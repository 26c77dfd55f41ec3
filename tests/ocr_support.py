"""Shared pieces of the OCR tests: seeded synthetic documents and readers loaded once."""

from __future__ import annotations

import random
from functools import cache

from media_ocr.reader import PhotoReader
from media_ocr.synthetic import Damage, Layout, ReturnSlip, Sample, make_sample, random_slip
from shop import Order, OrderLookup

SEED = 20261122


@cache
def sample(layout: Layout, damage: Damage = "clean", seed: int = SEED) -> Sample:
    """One synthetic document (the same one every time for the same arguments)."""
    return make_sample(layout, damage, random.Random(f"{seed}-{layout}-{damage}"))


@cache
def png(layout: Layout, damage: Damage = "clean") -> bytes:
    return sample(layout, damage).png()


@cache
def reader(engine: str = "combined") -> PhotoReader:
    found = PhotoReader(engine)
    found.warm_up()
    return found


def slip(seed: int = SEED) -> ReturnSlip:
    return random_slip(random.Random(seed))


class InMemoryOrders(OrderLookup):
    """The shop's orders for a few synthetic slips (for tests that need no database)."""

    def __init__(self, *slips: ReturnSlip) -> None:
        self.orders = {s.order_id: Order.model_validate(s.order_document()) for s in slips}

    async def get(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    async def recent_for_customer(
        self, *, phone: str | None = None, email: str | None = None, limit: int = 5
    ) -> list[Order]:
        return []
