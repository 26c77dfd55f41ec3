"""The payment centre closes refunds: a lightning refund goes to the embedded payment stand-in
over its HTTP protocol, and its signed callback completes the request (退款成功 on the customer's
channel); a failure or a partial refund goes to a person with a ticket."""

from __future__ import annotations

from pathlib import Path

from nlu import NluClient
from shop.aftersales import Step
from store.mongo import ConversationStore
from tests.downstream_support import loop_gateway, settled, standins
from tests.helpers import wait_for
from tests.selfservice import Customer


async def _lightning_refund(customer: Customer) -> str:
    await customer.order("paid")
    await customer.say("还没发货，帮我取消订单退款")
    assert "闪电退款" in await customer.say("确认")
    (request,) = await customer.requests()
    assert request.status is Step.PAYMENT_PROCESSING
    return request.id


async def outbox_texts(store: ConversationStore, conversation_id: str | None) -> list[str]:
    cursor = store.db["messages"].find({"direction": "out", "conversation_id": conversation_id})
    return [d["text"] async for d in cursor]


async def test_a_lightning_refund_is_submitted_and_completed_by_the_payment_centre_callback(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, _, _ = standins(gateway)
        customer = Customer(http, gateway)
        request_id = await _lightning_refund(customer)
        await wait_for(lambda: _has(payment.refunds, request_id))
        submitted = payment.refunds[request_id]
        assert submitted["refund"] == 8900 and submitted["notify_url"].endswith("/downstream/payment/refunds")
        sent = await payment.settle(request_id)
        assert sent.status == 200 and sent.answer["duplicate"] is False
        (request,) = await customer.requests()
        assert request.status is Step.COMPLETED
        assert [(e.step, e.actor) for e in request.timeline][-1] == (Step.COMPLETED, "payment_centre")
        assert [s.label for s in request.customer_timeline("zh")] == ["退款审核中", "退款中", "退款成功"]
        texts = await outbox_texts(store, request.conversation_id)
        assert any(t.startswith("退款成功") and request_id in t and "¥89.00" in t for t in texts)
        await settled(gateway)
        assert len(payment.submissions) == 1  # submitted once, whatever the sweeps did


async def test_a_failed_refund_goes_to_a_person_and_the_customer_is_told_why(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, _, _ = standins(gateway)
        customer = Customer(http, gateway)
        request_id = await _lightning_refund(customer)
        await wait_for(lambda: _has(payment.refunds, request_id))
        sent = await payment.settle(request_id, "failed", reason="用户银行卡已注销")
        assert sent.status == 200
        (request,) = await customer.requests()
        assert request.status is Step.PAYMENT_PROCESSING and request.ticket_id
        assert "用户银行卡已注销" in (request.timeline[-1].note or "")
        texts = await outbox_texts(store, request.conversation_id)
        assert any("未能到账" in t and "用户银行卡已注销" in t for t in texts)
        # The payment centre retried the refund another way and now reports success: completed.
        assert (await payment.settle(request_id)).status == 200
        (request,) = await customer.requests()
        assert request.status is Step.COMPLETED


async def test_a_partial_refund_is_told_with_both_amounts(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, _, _ = standins(gateway)
        customer = Customer(http, gateway)
        request_id = await _lightning_refund(customer)
        await wait_for(lambda: _has(payment.refunds, request_id))
        assert (await payment.settle(request_id, "partial", paid_fen=7900)).status == 200
        (request,) = await customer.requests()
        assert request.status is Step.PAYMENT_PROCESSING and request.ticket_id
        texts = await outbox_texts(store, request.conversation_id)
        assert any("已退回 ¥79.00" in t and "¥10.00" in t for t in texts)


async def _has(mapping: dict[str, object], key: str) -> bool:
    return key in mapping
