"""Problem and refund analytics: tickets by category and SKU with the repeat-defect flag, the
knowledge base's misses clustered, IVR handling time per scenario and nuisance calls, refund
records searched by order, request, status and date with CSV — through the quality API on the
embedded store, days in the shop's time zone."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway import Gateway, build_app
from media_ocr.pipeline import OcrWorkers
from quality.analytics import cluster_questions, mask_caller
from shop import Order
from shop.aftersales import RequestType, Step
from store import Event
from store.mongo import ConversationStore
from tests.test_ocr_api import AS_STAFF, Client, ocr_gateway

Setup = tuple[Gateway, Client]


@pytest_asyncio.fixture
async def running(store: ConversationStore, tmp_path: Path) -> AsyncIterator[Setup]:
    gateway = ocr_gateway(store, tmp_path, OcrWorkers("combined", use_threads=True))
    async with TestClient(TestServer(build_app(gateway)), headers=AS_STAFF) as client:
        yield gateway, client


def order(order_id: str, sku: str, phone: str) -> Order:
    return Order.model_validate({
        "order_id": order_id, "status": "delivered", "customer": {"name": "王伟", "phone": phone},
        "items": [{"sku": sku, "name": "保温杯", "quantity": 1, "price": 89.0, "category": "home"}],
        "amount": 89.0, "address": "浙江省杭州市西湖区文三路1号", "paid_at": "2026-11-01T10:00:00+08:00",
        "delivered_at": "2026-11-03T10:00:00+08:00",
    })  # fmt: skip


async def test_problems_by_category_and_sku_carry_the_repeat_defect_flag(running: Setup) -> None:
    gateway, client = running
    assert gateway.orders is not None and gateway.tickets is not None
    for n in range(3):  # three customers report the same cup broken: a possible product defect
        await gateway.orders.upsert([order(f"90000000000{n}", "SKU-CUP-7", f"1380000000{n}")])
        await gateway.tickets.open(
            type=None, customer_id=f"cust-{n}", summary="保温杯收到就是坏的，质量问题", conversation_id=None,
            channel="rest", order_id=f"90000000000{n}", reason="质量问题",
        )  # fmt: skip
    await gateway.orders.upsert([order("900000000009", "SKU-TEA-1", "13800000009")])
    await gateway.tickets.open(type=None, customer_id="cust-9", summary="快递太慢了，一直不送", conversation_id=None,
                               channel="rest", order_id="900000000009")  # fmt: skip
    body = await (await client.get("/api/console/quality/problems?lang=en")).json()
    assert body["tickets"] == 4 and body["timezone"] == "Asia/Shanghai"
    cup = next(s for s in body["skus"] if s["sku"] == "SKU-CUP-7")
    assert cup["tickets"] == 3 and cup["customers"] == 3 and cup["repeat_defect"] is True
    tea = next(s for s in body["skus"] if s["sku"] == "SKU-TEA-1")
    assert tea["repeat_defect"] is False
    assert body["skus"][0]["sku"] == "SKU-CUP-7"  # flagged SKUs first
    categories = {c["category"]: c for c in body["categories"]}
    assert sum(c["tickets"] for c in categories.values()) == 4
    assert all(len(c["by_day"]) == len(body["days"]) == 30 for c in categories.values())
    exported = await client.get("/api/console/quality/problems.csv")
    rows = list(csv.reader(io.StringIO((await exported.text()).lstrip("\ufeff"))))
    assert ["sku", "SKU-CUP-7", "", "3", "", "3", "", "yes"] in rows


def test_missed_questions_cluster_by_wording() -> None:
    clusters = cluster_questions(["发票可以开专票吗", "能开增值税专票吗", "发票能开专票吗？", "退货运费险怎么理赔",
                                  "运费险怎么赔付", "发票可以开专票吗"])  # fmt: skip
    assert len(clusters) == 2
    assert clusters[0].count("发票可以开专票吗") == 2 and len(clusters[0]) == 4


async def test_knowledge_misses_ivr_and_nuisance_calls(running: Setup) -> None:
    gateway, client = running
    assert gateway.store is not None
    now = datetime.now(UTC)
    for text in ("发票可以开专票吗", "发票能开专票吗", "你们支持花呗分期吗"):
        await gateway.store.log_event(Event(name="knowledge_miss", conversation_id="c1", data={"text": text}))
    for scenario, seconds in (("order_status", 40.0), ("order_status", 60.0), ("refund", 120.0)):
        await gateway.store.log_event(Event(name="call_ended", data={"scenario": scenario, "duration_seconds": seconds,
                                                                     "outcome": "self_service"}))  # fmt: skip
    for _ in range(3):
        await gateway.store.log_event(Event(name="call_rejected", data={"caller": "+8613900001234", "reason": "rate"}))
    old = Event(name="knowledge_miss", data={"text": "很久以前的问题"}, at=now - timedelta(days=90))
    await gateway.store.log_event(old)  # outside the default 30 days
    misses = await (await client.get("/api/console/quality/knowledge-misses")).json()
    assert misses["misses"] == 3 and misses["clusters"][0]["misses"] == 2
    assert misses["clusters"][0]["conversations"] == ["c1"]
    ivr = await (await client.get("/api/console/quality/ivr")).json()
    by = {s["scenario"]: s for s in ivr["scenarios"]}
    assert by["order_status"]["calls"] == 2 and by["order_status"]["median_seconds"] == 50.0
    assert by["refund"]["mean_seconds"] == 120.0
    nuisance = ivr["nuisance"]
    assert nuisance["rejected"] == 3 and nuisance["callers"] == 1 and nuisance["reasons"] == {"rate": 3}
    assert sum(nuisance["by_day"]) == 3 and nuisance["top_callers"][0]["caller"] == mask_caller("+8613900001234")
    assert "1234" not in nuisance["top_callers"][0]["caller"]


async def test_refund_records_are_searched_by_order_request_status_and_date(running: Setup) -> None:
    gateway, client = running
    assert gateway.aftersales is not None
    made = []
    for n, order_id in enumerate(("202611150001", "202611150001", "202611150002")):
        request, _ = await gateway.aftersales.create(
            type=RequestType.REFUND if n != 1 else RequestType.RETURN_REFUND, order_id=order_id,
            customer_id=f"c{n}", actor="customer", amount=10.0 * (n + 1), reason="破损",
            items=[{"sku": f"SKU-{n}", "quantity": 1}],
        )  # fmt: skip
        made.append(request)
    await gateway.aftersales.advance(made[0].id, Step.PAYMENT_PROCESSING, Step.COMPLETED, actor="payment_centre")
    by_order = await (await client.get("/api/console/refunds/records?order_id=202611150001")).json()
    assert {r["id"] for r in by_order["rows"]} == {made[0].id, made[1].id} and by_order["amount"] == 30.0
    done = await (await client.get("/api/console/refunds/records?status=completed")).json()
    assert [r["id"] for r in done["rows"]] == [made[0].id] and done["rows"][0]["refunded_at"]
    one = await (
        await client.get(f"/api/console/refunds/records?request_id={made[2].id}&from=2020-01-01&to=2020-01-02")
    ).json()
    assert [r["id"] for r in one["rows"]] == [made[2].id]  # a request id finds it whatever the dates
    today = datetime.now(UTC).astimezone().date()
    empty = await (await client.get("/api/console/refunds/records?from=2020-01-01&to=2020-01-31")).json()
    assert empty["rows"] == [] and today.isoformat() > "2020-01-31"
    assert (await client.get("/api/console/refunds/records?status=bogus")).status == 400
    assert (await client.get("/api/console/refunds/records?order_id=x'1")).status == 400
    exported = await client.get("/api/console/refunds/records.csv?order_id=202611150002")
    text = await exported.text()
    assert text.startswith("\ufeff") and made[2].id in text and made[0].id not in text
