"""The order file the demo shop (and a shop's import) is seeded from: times relative to the day it
is loaded, so the demo's orders cover every self-service path whatever the date."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shop import OrderStatus, load_orders_file
from shop.orders import SeedError
from tests.conftest import DEMO_ORDERS

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_relative_times_are_read_against_the_day_of_loading(tmp_path: Path) -> None:
    order = {
        "order_id": "202612030001", "status": "shipped", "customer": {"name": "x", "phone": "13900000000"},
        "items": [{"sku": "S", "name": "杯子", "quantity": 1, "price": 9.0}], "amount": 9.0, "address": "a",
        "paid_at": "now-2d-4h", "logistics": [{"time": "now-30m", "description": "揽收"}],
    }  # fmt: skip
    path = tmp_path / "orders.json"
    path.write_text(
        json.dumps({"orders": [order, {**order, "order_id": "202612030002", "paid_at": "2026-11-01T08:00:00+00:00"}]})
    )
    relative, absolute = load_orders_file(path, now=NOW)
    assert relative.paid_at == NOW - timedelta(days=2, hours=4)
    assert relative.logistics[0].time == NOW - timedelta(minutes=30)
    assert absolute.paid_at == datetime(2026, 11, 1, 8, tzinfo=UTC)  # absolute times stay as they are


def test_a_bad_relative_time_is_reported_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    order = {"order_id": "202612030001", "status": "paid", "customer": {"name": "x"}, "amount": 1.0, "address": "a",
             "items": [{"sku": "S", "name": "n", "quantity": 1, "price": 1.0}], "paid_at": "now-two-days"}  # fmt: skip
    path.write_text(json.dumps({"orders": [order]}))
    with pytest.raises(SeedError, match=r"orders\[0\]\.paid_at"):
        load_orders_file(path, now=NOW)


def test_the_demo_shop_covers_every_state_a_self_service_path_needs() -> None:
    orders = load_orders_file(DEMO_ORDERS)
    now = datetime.now(UTC)
    states = {o.status for o in orders}
    assert states == set(OrderStatus)
    delivered_days = [(now - o.delivered_at).days for o in orders if o.delivered_at is not None]
    assert any(d <= 7 for d in delivered_days) and any(d > 7 for d in delivered_days)  # within and outside the window
    shipped = [o for o in orders if o.status is OrderStatus.SHIPPED]
    quiet = [now - o.logistics[-1].time for o in shipped]
    assert any(q > timedelta(hours=48) for q in quiet) and any(
        q < timedelta(hours=48) for q in quiet
    )  # stalled, moving
    per_customer: dict[str, int] = {}
    for o in orders:
        per_customer[o.customer.phone or ""] = per_customer.get(o.customer.phone or "", 0) + 1
    assert max(per_customer.values()) >= 4
