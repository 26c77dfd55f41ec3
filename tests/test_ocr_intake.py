"""Photos read on arrival: a photo on an after-sales request or a ticket is read in the worker pool,
its fields land on the request and the ticket, a matching return slip advances its return, a
slip that does not match goes to the review queue, and a person's correction is matched again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway import Gateway, build_app
from media_ocr.pipeline import OcrWorkers
from media_ocr.synthetic import make_sample
from shop import Order
from shop.aftersales import RequestType, Step
from store.mongo import ConversationStore
from tests.test_ocr_api import AS_STAFF, Client, ocr_gateway

Setup = tuple[Gateway, Client]


@pytest_asyncio.fixture
async def running(store: ConversationStore, tmp_path: Path) -> AsyncIterator[Setup]:
    gateway = ocr_gateway(store, tmp_path, OcrWorkers("combined", use_threads=True))
    async with TestClient(TestServer(build_app(gateway)), headers=AS_STAFF) as client:
        assert gateway.intake is not None
        yield gateway, client


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.1)


async def slip_request(gateway: Gateway, seed: str, *, status: Step = Step.APPROVED, wrong_sku: bool = False) -> Any:
    """A return in ``status`` for the order a generated return slip names (its photo not yet attached)."""
    sample = make_sample("lines", "clean", random.Random(seed))
    order = sample.slip.order_document()
    assert gateway.orders is not None and gateway.aftersales is not None and gateway.media is not None
    await gateway.orders.upsert([Order.model_validate(order)])
    sku = "SKU-OTHER-1" if wrong_sku else sample.slip.sku
    request, _ = await gateway.aftersales.create(
        type=RequestType.RETURN_REFUND, order_id=sample.slip.order_id, customer_id=f"cust-{seed}", actor="customer",
        items=[{"sku": sku, "quantity": sample.slip.ordered_quantity, "price": 59.0}], amount=59.0, reason="破损",
    )  # fmt: skip
    if status is not Step.APPLIED:
        request = await gateway.aftersales.advance(request.id, status, actor="system:test")
    stored = await gateway.media.save(sample.png(), "image/png", filename="slip.png")
    assert stored.media_id is not None
    return request, stored.media_id, sample


async def test_a_matching_return_slip_advances_its_return_through_the_service(running: Setup) -> None:
    gateway, _ = running
    assert gateway.aftersales is not None
    request, media_id, sample = await slip_request(gateway, "match")
    await gateway.aftersales.add_evidence(request.id, [media_id])

    async def advanced() -> Any:
        found = await gateway.aftersales.get(request.id)  # type: ignore[union-attr]
        return found if found is not None and found.status is Step.AWAITING_RETURN else None

    fresh = await eventually(advanced)
    assert fresh.readings and fresh.readings[0]["document_type"] == "return_slip"
    assert fresh.readings[0]["fields"]["order_id"] == sample.slip.order_id
    assert fresh.timeline[-1].actor == "system:ocr" and "一致" in (fresh.timeline[-1].note or "")


async def test_a_slip_that_does_not_match_goes_to_review_and_the_request_waits(running: Setup) -> None:
    gateway, client = running
    assert gateway.aftersales is not None
    request, media_id, _ = await slip_request(gateway, "mismatch", wrong_sku=True)
    await gateway.aftersales.add_evidence(request.id, [media_id])

    async def flagged() -> Any:
        found = await gateway.aftersales.get(request.id)  # type: ignore[union-attr]
        readings = found.readings if found is not None else []
        return readings if readings and readings[0]["needs_review"] else None

    readings = await eventually(flagged)
    assert any(r.startswith("sku:") and request.id in r for r in readings[0]["review_reasons"])
    still = await gateway.aftersales.get(request.id)
    assert still is not None and still.status is Step.APPROVED  # never advanced silently
    queue = await (await client.get("/api/ocr/review")).json()
    assert readings[0]["result_id"] in [r["id"] for r in queue["results"]]


async def test_a_photo_on_a_ticket_gets_its_reading_attached(running: Setup) -> None:
    gateway, client = running
    assert gateway.tickets is not None
    _, media_id, sample = await slip_request(gateway, "ticket", status=Step.APPLIED)
    ticket, _ = await gateway.tickets.open(
        type=None, customer_id="cust-ticket", summary="商品破损要退货", conversation_id=None, channel="rest",
        order_id=sample.slip.order_id, evidence=[media_id], reason="破损",
    )  # fmt: skip

    async def attached() -> Any:
        found = await gateway.tickets.get(ticket.id)  # type: ignore[union-attr]
        return found if found is not None and found.ocr_result_ids else None

    fresh = await eventually(attached)
    body = await (await client.get(f"/api/backoffice/tickets/{fresh.id}")).json()
    readings = body["ticket"]["ocr_results"]
    assert readings[0]["document_type"] == "return_slip" and readings[0]["fields"]["order_id"] == sample.slip.order_id
    assert any(e["kind"] == "attachment" and e["actor"] == "system:ocr" for e in body["ticket"]["timeline"])


async def test_a_slip_photo_sent_while_a_return_waits_becomes_its_evidence(running: Setup) -> None:
    from store import Attachment, InboundMessage

    gateway, _ = running
    assert gateway.store is not None and gateway.aftersales is not None
    _, media_id, sample = await slip_request(gateway, "loose", status=Step.APPLIED)
    attachment = Attachment(kind="image", content_type="image/png", media_id=media_id, filename="slip.png")
    receipt = await gateway.store.accept_inbound(
        InboundMessage(
            channel="telegram",
            sender_id="loose-1",
            channel_message_id="m-loose",
            text="我拍了退货单",
            attachments=[attachment],
        )
    )
    customer = receipt.message.customer_id
    request, _ = await gateway.aftersales.create(
        type=RequestType.EXCHANGE, order_id=sample.slip.order_id, customer_id=customer, actor="customer",
        items=[{"sku": sample.slip.sku, "quantity": sample.slip.ordered_quantity}], reason="尺码不符",
    )  # fmt: skip
    await gateway.aftersales.advance(request.id, Step.APPROVED, actor="system:test")
    # The request was approved after the photo came: a second photo message is what the intake sees.
    again = await gateway.store.accept_inbound(
        InboundMessage(
            channel="telegram", sender_id="loose-1", channel_message_id="m-loose-2", attachments=[attachment]
        )
    )
    assert again.message.customer_id == customer

    async def advanced() -> Any:
        found = await gateway.aftersales.get(request.id)  # type: ignore[union-attr]
        return found if found is not None and found.status is Step.AWAITING_RETURN else None

    fresh = await eventually(advanced)
    assert media_id in fresh.evidence


async def test_a_corrected_reading_is_matched_again(running: Setup) -> None:
    gateway, client = running
    assert gateway.aftersales is not None and gateway.ocr is not None
    request, media_id, sample = await slip_request(gateway, "correct")
    result = await gateway.ocr.read_media(media_id, source={"request_id": request.id})
    assert result.id is not None and not result.needs_review
    flagged = await gateway.ocr.flag(result.id, ["quantity: a person should count the parcel"])
    assert flagged.needs_review
    correction = {"field": "quantity", "value": sample.slip.quantity, "who": "agent:li", "why": "counted"}
    response = await client.post(f"/api/ocr/{result.id}/corrections", json=correction)
    assert response.status == 200, await response.text()
    fresh = await gateway.aftersales.get(request.id)
    assert fresh is not None and fresh.status is Step.AWAITING_RETURN
    assert fresh.readings[-1]["result_id"] == result.id and not fresh.readings[-1]["needs_review"]
