"""Checking readings against the shop's orders, the review decision, and human corrections."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from media_ocr.fields import FieldConfig
from media_ocr.model import FieldReading
from media_ocr.pipeline import OcrService, OcrWorkers, assess
from media_ocr.reader import Reading
from media_ocr.store import ConcurrentChange, OcrResultStore
from media_ocr.validation import OrderCheck, ReviewPolicy
from shop import MongoOrderService, Order
from store.media import MediaStore
from store.mongo import ConversationStore
from tests.ocr_support import png

ORDER = {
    "order_id": "202611150001",
    "status": "delivered",
    "customer": {"name": "张伟", "phone": "13800138000", "customer_id": "VIP123456"},
    "items": [
        {"sku": "SKU-SHOE-42", "name": "跑步鞋", "quantity": 2, "price": 459.0},
        {"sku": "SKU-SOCK-5", "name": "棉袜", "quantity": 1, "price": 29.0},
    ],
    "amount": 947.0,
    "address": "浙江省杭州市西湖区文三路 398 号",
    "paid_at": "2026-11-01T10:00:00+08:00",
}


@pytest.fixture
async def orders(store: ConversationStore) -> MongoOrderService:
    service = MongoOrderService(store.db)
    await service.ensure_indexes()
    await service.upsert([Order.model_validate(ORDER)])
    return service


def reading(confidence: float = 0.99, **values: object) -> dict[str, FieldReading]:
    fields: dict[str, object] = {
        "order_id": "202611150001",
        "sku": "SKU-SHOE-42",
        "quantity": 1,
        "reason": "尺码不符",
        "customer_id": "VIP123456",
        "return_date": "2026-11-20",
    }
    fields.update(values)
    return {name: FieldReading(value, confidence, "text") for name, value in fields.items() if value is not None}  # type: ignore[arg-type]


async def verdict(orders: MongoOrderService, fields: dict[str, FieldReading]) -> tuple[bool, list[str]]:
    result = await assess(
        Reading(fields=fields, engine="test"),
        image="test",
        config=FieldConfig(),
        policy=ReviewPolicy(),
        check=OrderCheck(orders, today=lambda: date(2026, 11, 22)),
    )
    return result.needs_review, result.review_reasons


async def test_a_reading_that_fits_its_order_needs_no_review(orders: MongoOrderService) -> None:
    assert await verdict(orders, reading()) == (False, [])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"order_id": "202611150007"}, "order_id: no order 202611150007 in the shop"),
        ({"sku": "SKU-HAT-1"}, "sku: SKU-HAT-1 is not in order 202611150001 (it has SKU-SHOE-42, SKU-SOCK-5)"),
        ({"quantity": 3}, "quantity: 3 is more than the 2 ordered"),
        ({"reason": "不喜欢"}, "reason: “不喜欢” is not one of the preset reasons"),
        ({"customer_id": "VIP999999"}, "customer_id: VIP999999 is not the customer of order 202611150001"),
        ({"return_date": "2026-10-30"}, "return_date: 2026-10-30 is before the order was paid (2026-11-01)"),
        ({"return_date": "2026-12-30"}, "return_date: 2026-12-30 is in the future"),
        ({"sku": None}, "sku: not found on the photo"),
    ],
)
async def test_a_reading_that_does_not_fit_goes_to_review(
    orders: MongoOrderService, change: dict[str, object], reason: str
) -> None:
    needs_review, reasons = await verdict(orders, reading(**change))
    assert needs_review and reason in reasons


async def test_a_deliberately_wrong_digit_with_full_confidence_is_still_flagged(orders: MongoOrderService) -> None:
    # The engine is sure, the shop disagrees: the shop wins and a human looks.
    needs_review, reasons = await verdict(orders, reading(confidence=1.0, order_id="202611150010"))
    assert needs_review and reasons == ["order_id: no order 202611150010 in the shop"]


async def test_low_confidence_alone_sends_a_correct_reading_to_review(orders: MongoOrderService) -> None:
    needs_review, reasons = await verdict(orders, reading(confidence=0.6))
    assert needs_review and "quantity: read with low confidence (0.60)" in reasons
    # What the shop confirms (the order holds this SKU, for this customer) is trusted.
    assert not any(r.startswith(("order_id", "sku", "customer_id")) for r in reasons)


async def test_an_sku_with_a_letter_read_as_a_digit_is_settled_by_the_order(orders: MongoOrderService) -> None:
    fields = reading(sku="SKU-SH0E-42")
    assert await verdict(orders, fields) == (False, [])
    assert fields["sku"].value == "SKU-SHOE-42"


async def test_an_order_that_is_not_delivered_yet_is_doubted(orders: MongoOrderService) -> None:
    await orders.upsert([Order.model_validate({**ORDER, "order_id": "202611150002", "status": "paid"})])
    needs_review, reasons = await verdict(orders, reading(order_id="202611150002"))
    assert needs_review and reasons == ["order_id: order 202611150002 is paid; nothing to return yet"]


@pytest.fixture
def service(store: ConversationStore, orders: MongoOrderService, tmp_path: Path) -> OcrService:
    workers = OcrWorkers("rapidocr", use_threads=True)
    media = MediaStore(tmp_path / "media")
    media.use_collection(store.media)
    return OcrService(workers, OcrResultStore(store.db), media, orders)


async def test_a_correction_is_recorded_with_who_and_why_and_review_is_decided_again(service: OcrService) -> None:
    await service.results.ensure_indexes()
    result = await assess(
        Reading(fields=reading(quantity=None), engine="test"),
        image="slip.jpg",
        config=service.config,
        policy=service.policy,
        check=service.check,
    )
    stored = await service.results.insert(result)
    assert stored.id is not None and stored.needs_review
    assert stored.review_reasons == ["quantity: not found on the photo"]

    with pytest.raises(ValueError, match="quantity"):
        await service.correct(stored.id, "quantity", "many", who="agent:li", why="unreadable")
    corrected = await service.correct(stored.id, "quantity", "2", who="agent:li", why="counted in the photo")
    assert corrected.fields["quantity"] == 2 and corrected.confidence["quantity"] == 1.0
    assert not corrected.needs_review and corrected.review_reasons == []
    (correction,) = corrected.corrections
    assert (correction.field, correction.old_value, correction.value) == ("quantity", None, 2)
    assert (correction.who, correction.why) == ("agent:li", "counted in the photo")

    # A correction the shop contradicts keeps the result in review.
    again = await service.correct(stored.id, "quantity", 5, who="agent:wang", why="typo?")
    assert again.needs_review and again.review_reasons == ["quantity: 5 is more than the 2 ordered"]
    assert [c.who for c in again.corrections] == ["agent:li", "agent:wang"]
    assert await service.get(stored.id) == again


async def test_concurrent_corrections_do_not_overwrite_each_other(service: OcrService) -> None:
    stored = await service.results.insert(
        await assess(Reading(fields=reading(), engine="test"), image="x", config=service.config, policy=service.policy)
    )
    assert stored.id is not None
    found = await service.results.get_with_revision(stored.id)
    assert found is not None
    await service.correct(stored.id, "reason", "破损", who="a", why="b")
    with pytest.raises(ConcurrentChange):
        await service.results.replace_if_unchanged(found[0], found[1])  # the old revision
    outcomes = await asyncio.gather(
        *(service.correct(stored.id, "quantity", 1, who=f"agent{i}", why="same time") for i in range(3)),
        return_exceptions=True,
    )
    final = await service.get(stored.id)
    assert final is not None
    applied = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(final.corrections) == 1 + len(applied)
    assert all(isinstance(o, ConcurrentChange) for o in outcomes if isinstance(o, Exception))


async def test_media_is_stored_once_by_content_hash(store: ConversationStore, tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media")
    media.use_collection(store.media)
    data = png("label")
    first = await media.save(data, "image/png", filename="label.png")
    again = await media.save(data, "image/png", filename="other.png")
    assert first.media_id == again.media_id and len(first.media_id) == 64
    assert await media.get(first.media_id) == data
    assert await store.media.count_documents({}) == 1
    assert await media.get("0" * 64) is None and await media.get("../etc/passwd") is None
